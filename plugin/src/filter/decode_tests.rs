use super::testing::{decode_pieces, deflate_blocks, gzip, gzip_member_of, member};
use super::*;
use miniz_oxide::deflate::{compress_to_vec, compress_to_vec_zlib};
use proptest::prelude::*;

/// Decodes `body` fed in pieces of `cut` bytes: the decoded bytes, or why
/// not.
fn decode(coding: Coding, body: &[u8], cut: usize) -> Result<Vec<u8>, Malformed> {
    let (out, result) = decode_all(coding, body, cut);
    result.map(|()| out)
}

/// Decodes `body` fed in pieces of `cut` bytes: every byte decoded (also
/// before an error), and whether the body was well-formed.
fn decode_all(coding: Coding, body: &[u8], cut: usize) -> (Vec<u8>, Result<(), Malformed>) {
    decode_pieces(coding, body.chunks(cut.max(1)))
}

/// Every cut from one byte up gives the same answer as the whole body.
fn decode_all_cuts(coding: Coding, body: &[u8]) -> Result<Vec<u8>, Malformed> {
    let whole = decode(coding, body, body.len());
    for cut in [1, 2, 3, 7, 10, 11, 64, 4096] {
        assert_eq!(decode(coding, body, cut), whole, "cut {cut}");
    }
    whole
}

#[test]
fn content_encoding_headers_name_one_decodable_coding_or_none() {
    let cases: [(&[&str], Encoding); 13] = [
        (&[], Encoding::Identity),
        (&["identity"], Encoding::Identity),
        (&["", " , identity"], Encoding::Identity),
        (&["gzip"], Encoding::Decodable(Coding::Gzip)),
        (&["GZip"], Encoding::Decodable(Coding::Gzip)),
        (&["x-gzip"], Encoding::Decodable(Coding::Gzip)),
        (
            &["identity, deflate "],
            Encoding::Decodable(Coding::Deflate),
        ),
        (&["br"], Encoding::Other),
        (&["zstd"], Encoding::Other),
        (&["gzip, gzip"], Encoding::Other),
        (&["gzip", "deflate"], Encoding::Other),
        (&["gzip, br"], Encoding::Other),
        (&["gzip;q=1"], Encoding::Other),
    ];
    for (values, want) in cases {
        assert_eq!(Encoding::of(values), want, "{values:?}");
    }
}

#[test]
fn gzip_members_decode_whatever_the_cuts_and_header_fields() {
    let json = br#"{"order":{"id":7,"items":[1,2,3]},"note":"caf\u00e9"}"#;
    let bodies = [
        gzip(json),
        member(json, 6, Some(b"order.json"), None, false),
        member(json, 6, None, Some(b"\x01\x02xyz"), false),
        member(json, 6, None, Some(b""), false),
        member(json, 6, Some(b"n"), Some(b"e"), true),
        member(b"", 6, None, None, true),
    ];
    for body in &bodies {
        let want: &[u8] = if body.len() > 40 { json } else { b"" };
        assert_eq!(decode_all_cuts(Coding::Gzip, body).unwrap(), want);
    }
    // A comment, which the helper does not write.
    let mut with_comment = vec![0x1F, 0x8B, 8, FCOMMENT, 0, 0, 0, 0, 0, 255];
    with_comment.extend_from_slice(b"made by hand\0");
    with_comment.extend_from_slice(&gzip(json)[10..]);
    assert_eq!(decode_all_cuts(Coding::Gzip, &with_comment).unwrap(), json);
}

#[test]
fn gzip_members_follow_one_another_as_one_body() {
    // RFC 1952: a gzip file is a series of members, decoded as their
    // concatenation (Go's and Python's readers do so).
    let mut body = gzip(b"[1,");
    body.extend(member(b"", 6, Some(b"empty"), None, true));
    body.extend(gzip(b"2]"));
    assert_eq!(decode_all_cuts(Coding::Gzip, &body).unwrap(), b"[1,2]");
}

#[test]
fn zlib_streams_decode_whatever_the_cuts() {
    let json = br#"{"a":[true,false,null],"b":"x"}"#;
    let body = compress_to_vec_zlib(json, 9);
    assert_eq!(decode_all_cuts(Coding::Deflate, &body).unwrap(), json);
}

#[test]
fn empty_bodies_decode_to_nothing() {
    assert_eq!(decode(Coding::Gzip, b"", 1).unwrap(), b"");
    assert_eq!(decode(Coding::Deflate, b"", 1).unwrap(), b"");
}

#[test]
fn broken_gzip_is_malformed_with_the_reason() {
    let json = b"{\"a\":1}";
    let good = gzip(json);
    let n = good.len();
    let with = |at: usize, b: u8| {
        let mut body = good.clone();
        body[at] = b;
        body
    };
    let mut header_crc = member(json, 6, None, None, true);
    header_crc[10] ^= 1;
    let mut trailing = good.clone();
    trailing.push(0);
    let mut two_then_garbage = good.clone();
    two_then_garbage.extend(gzip(json));
    two_then_garbage.extend(b"\x1f");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("magic", with(0, 0x1E), "magic"),
        ("second magic byte", with(1, 0), "magic"),
        ("method", with(2, 7), "method"),
        ("reserved flag", with(3, 0x20), "reserved"),
        ("header checksum", header_crc, "header checksum"),
        ("data", with(10, 0xFF), "deflate"),
        ("crc", with(n - 8, good[n - 8] ^ 1), "CRC-32"),
        ("length", with(n - 4, good[n - 4] ^ 1), "length"),
        ("trailing zero", trailing, "magic"),
        ("cut header", good[..5].to_vec(), "inside a gzip header"),
        (
            "cut data",
            good[..12].to_vec(),
            "inside the compressed data",
        ),
        (
            "cut trailer",
            good[..n - 3].to_vec(),
            "inside a gzip trailer",
        ),
        (
            "half a member after one",
            two_then_garbage,
            "inside a gzip header",
        ),
    ];
    for (what, body, reason) in cases {
        let got = decode_all_cuts(Coding::Gzip, &body);
        let Err(Malformed(why)) = got else {
            panic!("{what}: decoded {got:?}");
        };
        assert!(why.contains(reason), "{what}: {why}");
    }
}

#[test]
fn broken_zlib_is_malformed() {
    let json = b"[1,2,3]";
    let good = compress_to_vec_zlib(json, 6);
    let n = good.len();
    let mut bad_adler = good.clone();
    bad_adler[n - 1] ^= 1;
    let mut bad_check = good.clone();
    bad_check[1] ^= 1;
    // FDICT: a preset dictionary the filter cannot know (0x78 0xBB passes
    // the header check with the flag set).
    let mut dict = vec![0x78, 0xBB, 0, 0, 0, 0];
    dict.extend_from_slice(&good[2..]);
    let mut trailing = good.clone();
    trailing.push(b' ');
    let cases = [
        ("adler", bad_adler),
        ("header check", bad_check),
        ("preset dictionary", dict),
        ("raw deflate", compress_to_vec(json, 6)),
        ("gzip", gzip(json)),
        ("trailing byte", trailing),
        ("cut", good[..n - 2].to_vec()),
    ];
    for (what, body) in cases {
        assert!(
            decode_all_cuts(Coding::Deflate, &body).is_err(),
            "{what} decoded"
        );
    }
}

#[test]
fn what_decodes_before_an_error_is_handed_on_whatever_the_cuts() {
    // A call that decodes more than one window's worth and then fails (here
    // at the Adler-32) still hands on every byte it decoded: the inspector
    // must see the same prefix however the body was cut.
    let data = [vec![b' '; 70_000], b"{}".to_vec()].concat();
    let mut body = compress_to_vec_zlib(&data, 6);
    let n = body.len();
    body[n - 1] ^= 1;
    let whole = decode_all(Coding::Deflate, &body, n);
    assert_eq!(whole.0, data);
    assert!(whole.1.is_err());
    for cut in [1, 5, n - 4, n - 1] {
        assert_eq!(decode_all(Coding::Deflate, &body, cut), whole, "cut {cut}");
    }
    // And a back-reference before the start of the second member reads
    // zeros, not the first member's bytes.
    let mut two = gzip(b"{\"a\":1}");
    let second = two.len();
    // A fixed-Huffman block: length 3 at distance 1, with nothing before it.
    two.extend([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255, 0x03, 0x02, 0x00]);
    let (out, ended) = decode_all(Coding::Gzip, &two, 1);
    assert_eq!(out, b"{\"a\":1}\0\0\0", "after {second} bytes");
    assert!(ended.is_err(), "the second member has no trailer");
}

#[test]
fn a_restarted_decoder_keeps_nothing_of_the_last_body() {
    // A back-reference with nothing before it, alone in a member.
    let reaching_back = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 255, 0x03, 0x02, 0x00];
    let secret = [b"{\"token\":\"".to_vec(), vec![b's'; 40_000]].concat();
    // Whole, cut short, and stopped by the sink at its first piece (an
    // inspector's refusal), which must still count what was decoded.
    for (first, cut_short, stop) in [
        (gzip(&secret), false, false),
        (compress_to_vec_zlib(&secret, 6), true, false),
        (gzip(&secret), false, true),
    ] {
        let mut decoder = Decoder::new(if cut_short {
            Coding::Deflate
        } else {
            Coding::Gzip
        });
        let used = if cut_short {
            first.len() / 2
        } else {
            first.len()
        };
        let fed = decoder.feed(&first[..used], &mut |_: &[u8]| -> Result<(), ()> {
            if stop {
                Err(())
            } else {
                Ok(())
            }
        });
        assert_eq!(fed.is_err(), stop);
        decoder.restart(Coding::Gzip);
        let mut out = Vec::new();
        let fed = decoder.feed(&reaching_back, &mut |bytes: &[u8]| -> Result<(), ()> {
            out.extend_from_slice(bytes);
            Ok(())
        });
        assert!(fed.is_ok(), "a member cut short is only known at the end");
        assert_eq!(out, [0, 0, 0], "cut short: {cut_short}, stopped: {stop}");
        assert!(decoder.finish().is_err(), "the member has no trailer");
        // And it decodes a new body as a new decoder does.
        decoder.restart(Coding::Deflate);
        let body = compress_to_vec_zlib(b"[1,2]", 6);
        let mut out = Vec::new();
        decoder
            .feed(&body, &mut |bytes: &[u8]| -> Result<(), ()> {
                out.extend_from_slice(bytes);
                Ok(())
            })
            .unwrap();
        assert_eq!((out.as_slice(), decoder.finish()), (&b"[1,2]"[..], Ok(())));
    }
}

#[test]
fn a_stopping_sink_stops_the_decoder_with_its_error() {
    let body = gzip(&[b' '; 100_000]);
    let mut decoder = Decoder::new(Coding::Gzip);
    let mut seen = 0;
    let fed = decoder.feed(&body, &mut |bytes: &[u8]| {
        seen += bytes.len();
        if seen > 40_000 {
            Err("enough")
        } else {
            Ok(())
        }
    });
    assert_eq!(fed, Err(Fed::Stopped("enough")));
    // Pieces of at most the window's size: it stopped at the second.
    assert_eq!(seen, 2 * WINDOW);
}

#[test]
fn a_bomb_is_decoded_in_pieces_of_constant_size() {
    // 64 MiB of zeros in about 64 KiB: the decoder never holds more than
    // one window (32 KiB) of it.
    let zeros = vec![0u8; 64 << 20];
    let body = gzip(&zeros);
    assert!(body.len() < 100_000);
    let mut decoder = Decoder::new(Coding::Gzip);
    let (mut total, mut largest) = (0usize, 0usize);
    for piece in body.chunks(16 * 1024) {
        decoder
            .feed(piece, &mut |bytes: &[u8]| -> Result<(), ()> {
                total += bytes.len();
                largest = largest.max(bytes.len());
                Ok(())
            })
            .unwrap();
    }
    decoder.finish().unwrap();
    assert_eq!(total, zeros.len());
    assert_eq!(largest, WINDOW);
}

#[test]
fn deflate_blocks_and_members_beyond_what_the_data_justifies_are_malformed() {
    let too_many = Err(Malformed(TOO_MANY_BLOCKS));
    let data = br#"{"a":1}"#;
    let body = |empty: usize| gzip_member_of(&deflate_blocks(&[(empty, data)]), data);
    // The writer is right: its blocks decode.
    assert_eq!(decode_all_cuts(Coding::Gzip, &body(3)), Ok(data.to_vec()));
    // The README's numbers: 64 blocks free, one more per 256 bytes.
    assert_eq!((FREE_BLOCKS, BYTES_PER_BLOCK), (64, 256));
    // Empty blocks before any data: the free ones, and one over.
    let free = FREE_BLOCKS as usize;
    assert_eq!(
        decode_all_cuts(Coding::Gzip, &body(free)),
        Ok(data.to_vec())
    );
    assert_eq!(decode_all_cuts(Coding::Gzip, &body(free + 1)), too_many);
    // Each 256 decoded bytes buy one more block.
    let run = [b' '; BYTES_PER_BLOCK as usize * 2];
    let spent = |extra: usize| {
        let pieces = [(0, &run[..]), (free - 1 + extra, &data[..])];
        let whole = [&run[..], data].concat();
        gzip_member_of(&deflate_blocks(&pieces), &whole)
    };
    // The stored block of the run is a block too: free - 1 + 2 empty ones
    // after it make free + 2 blocks, which 512 decoded bytes allow.
    assert!(decode_all_cuts(Coding::Gzip, &spent(2)).is_ok());
    assert_eq!(decode_all_cuts(Coding::Gzip, &spent(3)), too_many);
    // zlib streams count the same way.
    let zlib_of = |empty: usize| {
        let mut out = vec![0x78, 0x01];
        out.extend_from_slice(&deflate_blocks(&[(empty, data)]));
        let (a, b) = data.iter().fold((1u32, 0u32), |(a, b), &x| {
            let a = (a + u32::from(x)) % 65_521;
            (a, (b + a) % 65_521)
        });
        out.extend_from_slice(&(b << 16 | a).to_be_bytes());
        out
    };
    assert_eq!(
        decode_all_cuts(Coding::Deflate, &zlib_of(free)),
        Ok(data.to_vec())
    );
    assert_eq!(
        decode_all_cuts(Coding::Deflate, &zlib_of(free + 1)),
        too_many
    );
}

#[test]
fn gzip_members_beyond_what_the_data_justifies_are_malformed() {
    let too_many = Err(Malformed(TOO_MANY_BLOCKS));
    let empty = gzip(b"");
    let json = gzip(b"{}");
    // The first member is not counted; each one after it is.
    let free = FREE_BLOCKS as usize;
    let members = |n: usize| [empty.repeat(n - 1), json.clone()].concat();
    assert_eq!(
        decode_all_cuts(Coding::Gzip, &members(free + 1)),
        Ok(b"{}".to_vec())
    );
    assert_eq!(decode_all_cuts(Coding::Gzip, &members(free + 2)), too_many);
}

#[test]
fn flushing_every_512_bytes_stays_within_the_budget() {
    use miniz_oxide::deflate::core::{compress, CompressorOxide, TDEFLFlush, TDEFLStatus};
    // A client that flushes (sync) after every 512 bytes of a 256 KiB body:
    // two blocks per flush.
    let data: Vec<u8> = (0..256 * 1024u32)
        .map(|i| {
            let alphabet = b"{}[],:\"0123456789abcdef";
            alphabet[(i.wrapping_mul(2_654_435_761) >> 27) as usize % alphabet.len()]
        })
        .collect();
    // A gzip member of `data`, flushed after every `every` bytes.
    let flushed_every = |every: usize| {
        let flags = miniz_oxide::deflate::core::create_comp_flags_from_zip_params(6, 0, 0);
        let mut compressor = CompressorOxide::new(flags);
        let mut out = vec![0; data.len() * 2];
        let mut written = 0;
        let pieces: Vec<&[u8]> = data.chunks(every).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let flush = if i + 1 == pieces.len() {
                TDEFLFlush::Finish
            } else {
                TDEFLFlush::Sync
            };
            let (status, used, n) = compress(&mut compressor, piece, &mut out[written..], flush);
            assert!(matches!(status, TDEFLStatus::Okay | TDEFLStatus::Done));
            assert_eq!(used, piece.len());
            written += n;
        }
        gzip_member_of(&out[..written], &data)
    };
    assert_eq!(
        decode(Coding::Gzip, &flushed_every(512), 4096),
        Ok(data.clone())
    );
    // Flushing after every 100 bytes is not.
    assert_eq!(
        decode(Coding::Gzip, &flushed_every(100), 4096),
        Err(Malformed(TOO_MANY_BLOCKS))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any bytes, compressed at any level into two gzip members (or one
    /// zlib stream) and cut anywhere, decode to themselves.
    #[test]
    fn gzip_and_zlib_round_trip_under_any_cuts(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        level in 0u8..=9,
        split in 0usize..3000,
        cuts in proptest::collection::vec(1usize..700, 1..8),
    ) {
        let split = split.min(data.len());
        let mut body = member(&data[..split], level, Some(b"a"), None, true);
        body.extend(member(&data[split..], level, None, Some(b"x"), false));
        let zlib = compress_to_vec_zlib(&data, level);
        for (coding, body) in [(Coding::Gzip, body), (Coding::Deflate, zlib)] {
            // The body in pieces of the cut sizes, round and round.
            let mut rest = &body[..];
            let pieces = cuts.iter().cycle().map_while(|&n| {
                let (piece, after) = rest.split_at(n.min(rest.len()));
                rest = after;
                (!piece.is_empty()).then_some(piece)
            });
            prop_assert_eq!(decode_pieces(coding, pieces), (data.clone(), Ok(())));
        }
    }

    /// Whatever a body's bytes, decoding never panics and gives the same
    /// answer under any cut.
    #[test]
    fn any_bytes_get_one_answer_under_any_cut(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        flip in 0usize..400,
        cut in 1usize..50,
    ) {
        // Mostly well-formed starts, so that the checks past the magic
        // bytes are reached too.
        let mut real = gzip(&body);
        let at = flip % real.len();
        real[at] ^= 0x10;
        for (coding, bytes) in [(Coding::Gzip, &body), (Coding::Gzip, &real), (Coding::Deflate, &body)] {
            prop_assert_eq!(decode_all(coding, bytes, cut), decode_all(coding, bytes, bytes.len()));
        }
    }
}
