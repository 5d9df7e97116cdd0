//! Compressing as clients do, and decoding a body cut into pieces, for the
//! tests and the fuzz targets (feature `test-support`); not in the plugin.

use super::{Coding, Decoder, Fed, Malformed, FEXTRA, FHCRC, FNAME};

/// A gzip member of `data`, compressed at `level` (0–10), with the optional
/// header fields given.
pub fn member(
    data: &[u8],
    level: u8,
    name: Option<&[u8]>,
    extra: Option<&[u8]>,
    header_crc: bool,
) -> Vec<u8> {
    let mut flags = 0;
    if header_crc {
        flags |= FHCRC;
    }
    if extra.is_some() {
        flags |= FEXTRA;
    }
    if name.is_some() {
        flags |= FNAME;
    }
    let mut out = vec![0x1F, 0x8B, 8, flags, 1, 2, 3, 4, 0, 3];
    if let Some(extra) = extra {
        out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        out.extend_from_slice(extra);
    }
    if let Some(name) = name {
        out.extend_from_slice(name);
        out.push(0);
    }
    if header_crc {
        let crc = crc32fast::hash(&out) as u16;
        out.extend_from_slice(&crc.to_le_bytes());
    }
    out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(data, level));
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A gzip body of `data`: one member, no optional fields.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    member(data, 6, None, None, false)
}

/// `data` in the zlib format (HTTP's `deflate`), compressed at `level`.
pub fn zlib(data: &[u8], level: u8) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, level)
}

/// Decodes a body fed in `pieces`: every byte decoded (also before an
/// error), and whether the body was well-formed.
pub fn decode_pieces<'a>(
    coding: Coding,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<u8>, Result<(), Malformed>) {
    let mut decoder = Decoder::new(coding);
    let mut out = Vec::new();
    for piece in pieces {
        let fed = decoder.feed(piece, &mut |bytes: &[u8]| -> Result<(), ()> {
            out.extend_from_slice(bytes);
            Ok(())
        });
        match fed {
            Ok(()) => {}
            Err(Fed::Malformed(m)) => return (out, Err(m)),
            Err(Fed::Stopped(())) => unreachable!("the sink never stops"),
        }
    }
    let result = decoder.finish();
    (out, result)
}
