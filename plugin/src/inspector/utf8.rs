//! UTF-8 well-formedness (RFC 3629, Unicode table 3-7) for string contents.

use super::simd::{block, utf8_triples4};

/// What a lead byte promises: how many continuation bytes follow, and the
/// allowed range of the first one (the ranges that exclude overlongs,
/// UTF-16 surrogates and code points above U+10FFFF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lead {
    /// Continuation bytes still expected (1 to 3).
    pub need: u8,
    /// Lowest allowed value of the next byte.
    pub lo: u8,
    /// Highest allowed value of the next byte.
    pub hi: u8,
}

/// Classifies a non-ASCII byte as the start of a sequence, or `None` when it
/// cannot start one (a stray continuation byte, `C0`, `C1`, `F5`..`FF`).
#[inline(always)]
pub(crate) fn lead(b: u8) -> Option<Lead> {
    let (need, lo, hi) = match b {
        0xC2..=0xDF => (1, 0x80, 0xBF),
        0xE0 => (2, 0xA0, 0xBF),
        0xE1..=0xEC | 0xEE | 0xEF => (2, 0x80, 0xBF),
        0xED => (2, 0x80, 0x9F),
        0xF0 => (3, 0x90, 0xBF),
        0xF1..=0xF3 => (3, 0x80, 0xBF),
        0xF4 => (3, 0x80, 0x8F),
        _ => return None,
    };
    Some(Lead { need, lo, hi })
}

/// Result of checking one whole sequence in place.
pub(crate) enum Seq {
    /// Well-formed, this many bytes long.
    Valid(usize),
    /// The byte at this index (relative to the slice) is where it goes wrong.
    Invalid(usize),
    /// The sequence runs past `end`: finish it byte by byte.
    Incomplete,
}

/// Checks the sequence starting at `s[i]` (a byte >= 0x80) when all of it
/// lies before `end`. Same verdict as feeding its bytes one at a time.
#[inline(always)]
pub(crate) fn sequence(s: &[u8], i: usize, end: usize) -> Seq {
    let Some(l) = s.get(i).copied().and_then(lead) else {
        return Seq::Invalid(i);
    };
    let n = usize::from(l.need);
    if i + n >= end || i + n >= s.len() {
        return Seq::Incomplete;
    }
    let b1 = s[i + 1];
    if b1 < l.lo || b1 > l.hi {
        return Seq::Invalid(i + 1);
    }
    for k in 2..=n {
        if s[i + k] & 0xC0 != 0x80 {
            return Seq::Invalid(i + k);
        }
    }
    Seq::Valid(n + 1)
}

/// Consecutive well-formed sequences from `s[i]` (a byte >= 0x80), each
/// wholly before `end`: `Ok` with the index after the last one, or `Err`
/// with the index of the first sequence that is malformed or incomplete (to
/// be redone by [`sequence`] and the per-byte state for the exact verdict).
/// Text in scripts such as CJK is runs of these, so they are checked back to
/// back, with range checks in place of the table lookup of [`lead`].
#[inline(always)]
pub(crate) fn run(s: &[u8], mut i: usize, end: usize) -> Result<usize, usize> {
    let end = end.min(s.len());
    let cont = |b: u8| b & 0xC0 == 0x80;
    loop {
        // Four characters of CJK text at a time.
        while i + 16 <= end && s[i] & 0xF0 == 0xE0 && utf8_triples4(block(s, i)) {
            i += 12;
        }
        if i >= end || s[i] < 0x80 {
            return Ok(i);
        }
        let b0 = s[i];
        let n = if b0 < 0xE0 {
            if b0 < 0xC2 || i + 1 >= end || !cont(s[i + 1]) {
                return Err(i);
            }
            2
        } else if b0 < 0xF0 {
            if i + 2 >= end {
                return Err(i);
            }
            let (b1, b2) = (s[i + 1], s[i + 2]);
            // E0 excludes overlongs, ED excludes UTF-16 surrogates.
            let lo = if b0 == 0xE0 { 0xA0 } else { 0x80 };
            let hi = if b0 == 0xED { 0x9F } else { 0xBF };
            if b1 < lo || b1 > hi || !cont(b2) {
                return Err(i);
            }
            3
        } else {
            if b0 > 0xF4 || i + 3 >= end {
                return Err(i);
            }
            let (b1, b2, b3) = (s[i + 1], s[i + 2], s[i + 3]);
            // F0 excludes overlongs, F4 code points above U+10FFFF.
            let lo = if b0 == 0xF0 { 0x90 } else { 0x80 };
            let hi = if b0 == 0xF4 { 0x8F } else { 0xBF };
            if b1 < lo || b1 > hi || !cont(b2) || !cont(b3) {
                return Err(i);
            }
            4
        };
        i += n;
        // The same exit as above, tested here too so that text with a few
        // non-ASCII characters skips the vector test (0.5% of twitter
        // through the wasm).
        if i >= end || s[i] < 0x80 {
            return Ok(i);
        }
    }
}

/// Encodes a code point (surrogates included, as WTF-8 does) for hashing
/// decoded keys. Returns the bytes and their count.
#[inline]
pub(crate) fn encode(cp: u32) -> ([u8; 4], usize) {
    if cp < 0x80 {
        ([cp as u8, 0, 0, 0], 1)
    } else if cp < 0x800 {
        ([0xC0 | (cp >> 6) as u8, 0x80 | (cp & 0x3F) as u8, 0, 0], 2)
    } else if cp < 0x10000 {
        (
            [
                0xE0 | (cp >> 12) as u8,
                0x80 | ((cp >> 6) & 0x3F) as u8,
                0x80 | (cp & 0x3F) as u8,
                0,
            ],
            3,
        )
    } else {
        (
            [
                0xF0 | (cp >> 18) as u8,
                0x80 | ((cp >> 12) & 0x3F) as u8,
                0x80 | ((cp >> 6) & 0x3F) as u8,
                0x80 | (cp & 0x3F) as u8,
            ],
            4,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Just;

    #[test]
    fn encode_matches_std_for_scalar_values() {
        for cp in [0x24u32, 0xA2, 0x939, 0x20AC, 0xD55C, 0x10348, 0x10FFFF] {
            let c = char::from_u32(cp).unwrap();
            let mut buf = [0u8; 4];
            let want = c.encode_utf8(&mut buf).as_bytes().to_vec();
            let (got, n) = encode(cp);
            assert_eq!(&got[..n], &want[..]);
        }
    }

    /// [`run`] by way of [`sequence`].
    fn run_by_sequence(s: &[u8], mut i: usize, end: usize) -> Result<usize, usize> {
        loop {
            match sequence(s, i, end) {
                Seq::Valid(n) => i += n,
                _ => return Err(i),
            }
            if i >= end || s[i] < 0x80 {
                return Ok(i);
            }
        }
    }

    /// `run` agrees with `sequence` for every lead and first continuation
    /// byte, each class of later byte, and every end.
    #[test]
    fn run_agrees_with_sequence() {
        for b0 in 0x80..=0xFFu8 {
            for b1 in 0..=0xFFu8 {
                for b2 in [0x00, 0x41, 0x7F, 0x80, 0x9F, 0xA0, 0xBF, 0xC0, 0xE3, 0xFF] {
                    for b3 in [0x41, 0x80, 0xBF, 0xC0] {
                        let s = [b0, b1, b2, b3, b'"'];
                        for end in 1..=s.len() {
                            assert_eq!(
                                run(&s, 0, end),
                                run_by_sequence(&s, 0, end),
                                "{s:x?} {end}"
                            );
                        }
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// Text of one- to four-byte characters (CJK runs included, the
        /// narrow `E0` and `ED` leads too), one byte possibly corrupted:
        /// `run`, which takes four three-byte characters at a time where it
        /// can, agrees with `sequence` from every start and for every end.
        #[test]
        fn run_agrees_with_sequence_on_text(
            chars in proptest::collection::vec(
                proptest::prop_oneof![
                    Just('a'), Just('é'), Just('日'), Just('本'), Just('ࠀ'),
                    Just('\u{D7FF}'), Just('\u{E000}'), Just('\u{FFFF}'), Just('😀'),
                    proptest::char::any(),
                ],
                0..40,
            ),
            corrupt in proptest::option::of((0usize..160, 0u8..=255)),
        ) {
            let mut s = chars.iter().collect::<String>().into_bytes();
            if let Some((at, byte)) = corrupt {
                if !s.is_empty() {
                    let at = at % s.len();
                    s[at] = byte;
                }
            }
            for i in 0..s.len() {
                if s[i] < 0x80 {
                    continue;
                }
                for end in i + 1..=s.len() {
                    proptest::prop_assert_eq!(run(&s, i, end), run_by_sequence(&s, i, end));
                }
            }
        }
    }

    #[test]
    fn lead_ranges_exclude_overlongs_surrogates_and_out_of_range() {
        assert!(lead(0xC0).is_none());
        assert!(lead(0xC1).is_none());
        assert!(lead(0x80).is_none());
        assert!(lead(0xF5).is_none());
        assert_eq!(lead(0xE0).unwrap().lo, 0xA0);
        assert_eq!(lead(0xED).unwrap().hi, 0x9F);
        assert_eq!(lead(0xF4).unwrap().hi, 0x8F);
    }
}
