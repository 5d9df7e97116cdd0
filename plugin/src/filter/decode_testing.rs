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
    push_trailer(&mut out, data);
    out
}

/// A gzip member's trailer for `data`: its CRC-32 and its length.
fn push_trailer(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
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

/// Raw deflate data as a hostile client might write it: each piece of
/// `pieces` is `(empty, data)`, that many empty fixed-Huffman blocks (ten
/// bits each) followed by `data` in a stored block; the last stored block
/// is final. Each `data` must be shorter than 64 KiB.
pub fn deflate_blocks(pieces: &[(usize, &[u8])]) -> Vec<u8> {
    let mut bits = Bits::default();
    for (i, (empty, data)) in pieces.iter().enumerate() {
        for _ in 0..*empty {
            bits.push(0, 1); // not final
            bits.push(1, 2); // fixed Huffman codes
            bits.push(0, 7); // end of block (code 256: seven zero bits)
        }
        bits.push(u32::from(i + 1 == pieces.len()), 1);
        bits.push(0, 2); // stored
        bits.align();
        let len = u16::try_from(data.len()).expect("a stored block holds under 64 KiB");
        bits.bytes.extend_from_slice(&len.to_le_bytes());
        bits.bytes.extend_from_slice(&(!len).to_le_bytes());
        bits.bytes.extend_from_slice(data);
    }
    bits.bytes
}

/// A gzip member around raw deflate data that decodes to `data`.
pub fn gzip_member_of(deflate: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3];
    out.extend_from_slice(deflate);
    push_trailer(&mut out, data);
    out
}

/// Bits written least significant first, as deflate packs them.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    used: u32,
}

impl Bits {
    fn push(&mut self, value: u32, count: u32) {
        for k in 0..count {
            if self.used == 0 {
                self.bytes.push(0);
            }
            if let Some(last) = self.bytes.last_mut() {
                *last |= (((value >> k) & 1) as u8) << self.used;
            }
            self.used = (self.used + 1) % 8;
        }
    }

    fn align(&mut self) {
        self.used = 0;
    }
}
