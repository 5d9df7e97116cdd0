//! `on_encoded_body: "inspect"`: request bodies sent with `content-encoding:
//! gzip` or `deflate`, decoded as they stream through so the inspector sees
//! the JSON the service will parse.
//!
//! OpenTelemetry exporters, bulk indexers and webhook senders compress
//! their JSON. Refusing it breaks them; passing it lets every such body
//! around every check. Decoding is the third way, and it costs constant
//! memory: one inflater (its tables and a 32 KiB window, which the decoded
//! bytes are handed on from) per encoded request, whatever the body's size
//! or ratio. The upstream still gets the body as sent; only the inspector
//! sees it decoded.
//!
//! It is strict where decoders disagree, because a body two decoders read
//! differently is what this filter exists to stop: gzip header checksums
//! (Go checks them, Python skips them), reserved flag bits, trailing bytes
//! after the last member (some decoders ignore them, others fail), a bad
//! CRC-32 or length in a member's trailer, a zlib stream whose Adler-32 is
//! wrong or that needs a preset dictionary, and `deflate` without its zlib
//! wrapper (RFC 9110 §8.4.1.2 says `deflate` is the zlib format) are all
//! malformed.

use crate::ascii::eq_ignore_case;
use miniz_oxide::inflate::core::inflate_flags::{
    TINFL_FLAG_COMPUTE_ADLER32, TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_IGNORE_ADLER32,
    TINFL_FLAG_PARSE_ZLIB_HEADER, TINFL_FLAG_STOP_ON_BLOCK_BOUNDARY,
};
use miniz_oxide::inflate::core::{decompress, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;

/// The deflate window: the last 32 KiB decoded, which back-references copy
/// from. Decoded bytes are handed on straight from it, in pieces of at most
/// this size.
const WINDOW: usize = 32 * 1024;

/// Deflate blocks and gzip members a body may start before
/// [`BYTES_PER_BLOCK`] applies.
pub const FREE_BLOCKS: u64 = 64;

/// Decoded bytes each further deflate block or gzip member must bring.
///
/// The inflater builds its Huffman tables anew for every block, and readies
/// itself anew for every member: a few microseconds each in wasm, however
/// little the block decodes. An empty block is ten bits, so 2 MiB of them
/// would take seconds to decode to nothing. Compressors start a block per
/// some 16 K symbols, and two more per flush; one per 256 decoded bytes
/// leaves room for a flush every 512 bytes, and bounds the decoder's work
/// by the decoded size (the inspector's limits) again.
pub const BYTES_PER_BLOCK: u64 = 256;

/// Why a body over the block budget is malformed (its log line).
const TOO_MANY_BLOCKS: &str =
    "more deflate blocks or gzip members than the decoded bytes justify (one per 256 after the first 64)";

/// A content coding the filter can see through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` or `x-gzip` (RFC 1952), one or more members.
    Gzip,
    /// `deflate`: the zlib format (RFC 1950).
    Deflate,
}

/// What a request's `content-encoding` headers say about its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No coding, or only `identity`.
    Identity,
    /// Exactly one coding, and one the filter decodes.
    Decodable(Coding),
    /// Anything else: `br`, `zstd`, `compress`, an unknown token, or more
    /// than one coding (`gzip, gzip`).
    Other,
}

impl Encoding {
    /// Reads every `content-encoding` value, in order (a header may be
    /// repeated, and each value may list several codings).
    #[inline]
    pub fn of<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut found = Encoding::Identity;
        for value in values {
            for token in value.as_ref().split(',').map(str::trim_ascii) {
                let is = |name: &str| eq_ignore_case(token.as_bytes(), name.as_bytes());
                if token.is_empty() || is("identity") {
                    continue;
                }
                let coding = if is("gzip") || is("x-gzip") {
                    Coding::Gzip
                } else if is("deflate") {
                    Coding::Deflate
                } else {
                    return Encoding::Other;
                };
                if found != Encoding::Identity {
                    return Encoding::Other;
                }
                found = Encoding::Decodable(coding);
            }
        }
        found
    }
}

/// Why an encoded body cannot be decoded; goes into the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// A failed [`Decoder::feed`]: the body's encoding is broken, or the
/// consumer of the decoded bytes stopped it.
#[derive(Debug, PartialEq, Eq)]
pub enum Fed<E> {
    /// The encoded bytes are not valid for their coding.
    Malformed(Malformed),
    /// The consumer's own error, returned as it was.
    Stopped(E),
}

/// Where a decoder is in its stream (a zlib stream only has `Data` and
/// `Between`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// In a member's header.
    Header(Header),
    /// In the compressed data.
    Data,
    /// In a member's eight-byte trailer: `n` bytes of it read.
    Trailer { bytes: [u8; 8], n: u8 },
    /// After a whole member (gzip) or the whole stream (zlib): the end of
    /// the body may come here. For gzip, more bytes must start a member.
    Between,
}

/// The parts of a gzip member header (RFC 1952 §2.3), read byte by byte so
/// that any cut of the body reads it alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    part: Part,
    /// Bytes read of the current part.
    n: u16,
    /// FLG.
    flags: u8,
    /// XLEN as read so far, then the extra field's length.
    extra: u16,
    /// CRC16 as read so far.
    crc16: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// ID1 ID2 CM FLG MTIME(4) XFL OS.
    Fixed,
    /// XLEN, two bytes little-endian.
    ExtraLength,
    /// The extra field.
    Extra,
    /// The file name, up to its NUL.
    Name,
    /// The comment, up to its NUL.
    Comment,
    /// The header's CRC16, two bytes little-endian.
    Crc,
}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xE0;

impl Header {
    const START: Header = Header {
        part: Part::Fixed,
        n: 0,
        flags: 0,
        extra: 0,
        crc16: 0,
    };

    /// The part after `part`, given the flags.
    fn next(part: Part, flags: u8) -> Option<Part> {
        let order = [
            (Part::ExtraLength, FEXTRA),
            (Part::Name, FNAME),
            (Part::Comment, FCOMMENT),
            (Part::Crc, FHCRC),
        ];
        let from = match part {
            Part::Fixed => 0,
            Part::ExtraLength | Part::Extra => 1,
            Part::Name => 2,
            Part::Comment => 3,
            Part::Crc => 4,
        };
        order
            .get(from..)?
            .iter()
            .find(|(_, flag)| flags & flag != 0)
            .map(|(part, _)| *part)
    }
}

/// One request's decoder: bytes as sent in, decoded bytes out.
///
/// It drives miniz_oxide's core inflater over its own window rather than
/// through the stream API, which decodes into an internal window and copies
/// out what fits: when a call both decodes and fails, the stream API drops
/// what did not fit, so what the inspector saw before the failure would
/// depend on how much input each call had, that is on the chunking.
pub struct Decoder {
    coding: Coding,
    inflater: Box<DecompressorOxide>,
    /// The deflate window, used as a ring.
    window: Vec<u8>,
    /// Where the next decoded byte goes in `window`.
    at: usize,
    /// Bytes decoded in the current member (or stream).
    decoded: u64,
    /// Bytes decoded in the whole body.
    body_decoded: u64,
    /// Deflate blocks ended and gzip members begun in the whole body.
    blocks: u64,
    stage: Stage,
    /// The CRC-32 of the current gzip member's header (for FHCRC), then of
    /// its decoded bytes, with their count (for the trailer).
    crc: crc32fast::Hasher,
    /// Any byte of the body read yet.
    started: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("coding", &self.coding)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// Bytes this decoder holds, itself included (its window and inflater
    /// state): what a request decoding a body counts against
    /// `max_memory_bytes`.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of::<DecompressorOxide>()
            + self.window.capacity()
    }

    /// A decoder for a body in `coding`.
    pub fn new(coding: Coding) -> Self {
        let mut decoder = Self {
            coding,
            inflater: Box::default(),
            window: vec![0; WINDOW],
            at: 0,
            decoded: 0,
            body_decoded: 0,
            blocks: 0,
            stage: Stage::Between,
            crc: crc32fast::Hasher::new(),
            started: false,
        };
        decoder.restart(coding);
        decoder
    }

    /// Readies a decoder that has been used for a new body in `coding`, as
    /// [`Decoder::new`] would make it (the window is zeroed where the last
    /// body wrote: nothing of it can reach the next one).
    pub fn restart(&mut self, coding: Coding) {
        self.next_member();
        self.coding = coding;
        self.stage = match coding {
            Coding::Gzip => Stage::Header(Header::START),
            Coding::Deflate => Stage::Data,
        };
        self.crc = crc32fast::Hasher::new();
        self.started = false;
        self.body_decoded = 0;
        self.blocks = 0;
    }

    /// Counts a deflate block or a gzip member: `Err` when the body has
    /// started more of them than its decoded bytes justify (see
    /// [`BYTES_PER_BLOCK`]).
    fn count_block<E>(&mut self) -> Result<(), Fed<E>> {
        self.blocks += 1;
        if self.blocks > FREE_BLOCKS + self.body_decoded / BYTES_PER_BLOCK {
            return Err(malformed(TOO_MANY_BLOCKS));
        }
        Ok(())
    }

    /// Decodes the next bytes of the body, handing every decoded piece to
    /// `sink` in order; stops at the first error, the sink's included.
    pub fn feed<E>(
        &mut self,
        mut input: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), Fed<E>> {
        if !input.is_empty() {
            self.started = true;
        }
        while !input.is_empty() {
            let used = match self.stage {
                Stage::Header(header) => self.header(header, input)?,
                Stage::Data => self.data(input, sink)?,
                Stage::Trailer { bytes, n } => self.trailer(bytes, n, input)?,
                Stage::Between => match self.coding {
                    // The trailer has already put in a fresh checksum.
                    Coding::Gzip => {
                        self.count_block()?;
                        self.stage = Stage::Header(Header::START);
                        0
                    }
                    Coding::Deflate => {
                        return Err(malformed("data after the end of the zlib stream"))
                    }
                },
            };
            input = input.get(used..).unwrap_or_default();
        }
        Ok(())
    }

    /// The body has ended: `Err` unless it ended after a whole stream (or
    /// was empty).
    pub fn finish(&self) -> Result<(), Malformed> {
        match self.stage {
            Stage::Between => Ok(()),
            _ if !self.started => Ok(()),
            Stage::Header(_) => Err(Malformed("the body ends inside a gzip header")),
            Stage::Data => Err(Malformed("the body ends inside the compressed data")),
            Stage::Trailer { .. } => Err(Malformed("the body ends inside a gzip trailer")),
        }
    }

    /// Reads header bytes from `input`: how many it used.
    fn header<E>(&mut self, mut h: Header, input: &[u8]) -> Result<usize, Fed<E>> {
        let mut used = 0;
        for &b in input {
            used += 1;
            if h.part != Part::Crc {
                self.crc.update(&[b]);
            }
            let mut done_part = false;
            match h.part {
                Part::Fixed => {
                    let wrong = match h.n {
                        0 if b != 0x1F => Some("not a gzip member (wrong magic bytes)"),
                        1 if b != 0x8B => Some("not a gzip member (wrong magic bytes)"),
                        2 if b != 8 => Some("a gzip compression method other than deflate"),
                        3 if b & FRESERVED != 0 => Some("reserved gzip header flags set"),
                        _ => None,
                    };
                    if let Some(why) = wrong {
                        return Err(malformed(why));
                    }
                    if h.n == 3 {
                        h.flags = b;
                    }
                    h.n += 1;
                    done_part = h.n == 10;
                }
                Part::ExtraLength => {
                    h.extra |= u16::from(b) << (8 * h.n);
                    h.n += 1;
                    if h.n == 2 {
                        h.part = Part::Extra;
                        h.n = 0;
                        done_part = h.extra == 0;
                    }
                }
                Part::Extra => {
                    h.n += 1;
                    done_part = h.n == h.extra;
                }
                Part::Name | Part::Comment => done_part = b == 0,
                Part::Crc => {
                    h.crc16 |= u16::from(b) << (8 * h.n);
                    h.n += 1;
                    if h.n == 2 {
                        let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new());
                        if crc.finalize() as u16 != h.crc16 {
                            return Err(malformed("the gzip header checksum is wrong"));
                        }
                        self.stage = Stage::Data;
                        return Ok(used);
                    }
                }
            }
            if done_part {
                match Header::next(h.part, h.flags) {
                    Some(part) => {
                        h.part = part;
                        h.n = 0;
                    }
                    None => {
                        self.crc = crc32fast::Hasher::new();
                        self.stage = Stage::Data;
                        return Ok(used);
                    }
                }
            }
        }
        self.stage = Stage::Header(h);
        Ok(used)
    }

    /// Inflates compressed bytes from `input` into `sink`: how many it used.
    fn data<E>(
        &mut self,
        input: &[u8],
        sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, Fed<E>> {
        let flags = TINFL_FLAG_HAS_MORE_INPUT
            | TINFL_FLAG_STOP_ON_BLOCK_BOUNDARY
            | match self.coding {
                Coding::Gzip => TINFL_FLAG_IGNORE_ADLER32,
                Coding::Deflate => TINFL_FLAG_PARSE_ZLIB_HEADER | TINFL_FLAG_COMPUTE_ADLER32,
            };
        let mut rest = input;
        // Each turn consumes input or decodes into the window, or returns:
        // the loop ends.
        loop {
            let (status, used, produced) =
                decompress(&mut self.inflater, rest, &mut self.window, self.at, flags);
            rest = rest.get(used..).unwrap_or_default();
            // Counted before the sink may stop the decoder, so that
            // `restart` zeroes every byte written.
            let from = self.at;
            self.at = (from + produced) & (WINDOW - 1);
            self.decoded += produced as u64;
            self.body_decoded += produced as u64;
            // Every decoded byte is handed on before the status is looked
            // at: what comes before an error is the same for every cut.
            let decoded = self.window.get(from..from + produced).unwrap_or_default();
            if !decoded.is_empty() {
                if self.coding == Coding::Gzip {
                    self.crc.update(decoded);
                }
                sink(decoded).map_err(Fed::Stopped)?;
            }
            let progress = used > 0 || produced > 0;
            match status {
                TINFLStatus::Done => {
                    self.stage = match self.coding {
                        Coding::Gzip => Stage::Trailer {
                            bytes: [0; 8],
                            n: 0,
                        },
                        Coding::Deflate => Stage::Between,
                    };
                    return Ok(input.len() - rest.len());
                }
                // A block ended and the next one has not begun: the bits it
                // took may all have been read already, so it is progress
                // even when no byte was used.
                TINFLStatus::BlockBoundary => self.count_block()?,
                TINFLStatus::NeedsMoreInput if rest.is_empty() => return Ok(input.len()),
                TINFLStatus::NeedsMoreInput | TINFLStatus::HasMoreOutput if progress => {}
                _ => {
                    return Err(malformed(match self.coding {
                        Coding::Gzip => "invalid deflate data",
                        Coding::Deflate => "invalid zlib data (or deflate without its zlib header)",
                    }))
                }
            }
        }
    }

    /// Readies the inflater for the next gzip member. The window is zeroed
    /// where the last member wrote, so that a back-reference past the start
    /// of a member (which other decoders refuse) decodes to NUL bytes, which
    /// no JSON holds, rather than to the last member's bytes; zeroing costs
    /// no more than the decoding did.
    fn next_member(&mut self) {
        self.inflater.init();
        let dirty = usize::try_from(self.decoded).map_or(WINDOW, |n| n.min(WINDOW));
        if let Some(written) = self.window.get_mut(..dirty) {
            written.fill(0);
        }
        self.at = 0;
        self.decoded = 0;
    }

    /// Reads trailer bytes from `input`: how many it used.
    fn trailer<E>(&mut self, mut bytes: [u8; 8], mut n: u8, input: &[u8]) -> Result<usize, Fed<E>> {
        let mut used = 0;
        for &b in input {
            if let Some(slot) = bytes.get_mut(usize::from(n)) {
                *slot = b;
            }
            n += 1;
            used += 1;
            if n == 8 {
                let [c0, c1, c2, c3, s0, s1, s2, s3] = bytes;
                let crc = std::mem::replace(&mut self.crc, crc32fast::Hasher::new());
                let size = crc.total_len() as u32;
                if u32::from_le_bytes([c0, c1, c2, c3]) != crc.finalize() {
                    return Err(malformed("the gzip CRC-32 does not match the data"));
                }
                if u32::from_le_bytes([s0, s1, s2, s3]) != size {
                    return Err(malformed("the gzip length does not match the data"));
                }
                self.next_member();
                self.stage = Stage::Between;
                return Ok(used);
            }
        }
        self.stage = Stage::Trailer { bytes, n };
        Ok(used)
    }
}

fn malformed<E>(why: &'static str) -> Fed<E> {
    Fed::Malformed(Malformed(why))
}

#[cfg(any(test, feature = "test-support"))]
#[path = "decode_testing.rs"]
pub mod testing;

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
