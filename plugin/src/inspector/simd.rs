//! Sixteen bytes at a time: the classifications the hot loops ask most often
//! (where does this string body end), as one vector compare and a bit mask.
//!
//! x86_64 always has SSE2 and the plugin's wasm build enables `simd128`
//! (`.cargo/config.toml`); any other target gets the same answers from two
//! SWAR words. Every function returns a mask with bit `k` set when byte `k`
//! of the block is *of interest*, so `trailing_zeros` is the index of the
//! first one and 0 means "skip all sixteen".

use super::swar::{is_string_special, load8, string_specials};

/// Sixteen bytes of the input.
pub(super) type Block = [u8; 16];

/// The block at `s[i..i + 16]` (the caller checks `i + 16 <= s.len()`).
#[inline(always)]
pub(super) fn block(s: &[u8], i: usize) -> &Block {
    s[i..i + 16].try_into().expect("caller checks the length")
}

/// Bytes that end a plain run in a string body: `"`, `\`, a control byte
/// (< 0x20) or a non-ASCII byte (>= 0x80). As signed bytes the last two are
/// exactly those below 0x20, so the test is two equalities and one compare.
/// Only the lowest bit is promised: the portable answer may also flag bytes
/// after the first (see `swar::string_specials`).
#[inline(always)]
pub(super) fn string_specials16(b: &Block) -> u32 {
    imp::string_specials16(b)
}

/// Bytes other than a space: where the indentation of pretty-printed JSON
/// ends.
#[inline(always)]
pub(super) fn non_spaces16(b: &Block) -> u32 {
    imp::non_spaces16(b)
}

/// Bytes other than JSON whitespace (space, `\n`, `\r`, `\t`): where a
/// gap between tokens ends. Native only: wasm skips indentation its own way
/// (`swar::short_gap`).
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
pub(super) fn non_whitespace16(b: &Block) -> u32 {
    imp::non_whitespace16(b)
}

/// Bytes other than ASCII digits: where a run of digits in a number ends.
#[inline(always)]
pub(super) fn non_digits16(b: &Block) -> u32 {
    imp::non_digits16(b)
}

/// Bytes that may follow a value in valid JSON: `,`, `]`, `}` or
/// whitespace (with, as signed bytes below 0x21, every control and
/// non-ASCII byte): where a number token ends if it is well formed. Native
/// only: wasm does not guess number ends (`fast::number_end`).
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
pub(super) fn value_ends16(b: &Block) -> u32 {
    imp::value_ends16(b)
}

/// Bytes that may start a line break in JSON Lines: `\n`, `\r`, and the
/// lead bytes `C2` and `E2` of U+0085 and of U+2028 and U+2029
/// ([`super::lines`]). CJK text, whose continuation bytes include the
/// separators' last bytes, has neither lead.
#[inline(always)]
pub(super) fn line_breaks16(b: &Block) -> u32 {
    imp::line_breaks16(b)
}

/// The byte-wise twin of [`line_breaks16`].
#[inline(always)]
pub(super) fn is_line_break_lead(b: u8) -> bool {
    matches!(b, b'\n' | b'\r' | 0xC2 | 0xE2)
}

/// Lanes where `a` and `b` hold the same byte: comparing a key with a
/// recorded one sixteen bytes at a time.
#[inline(always)]
pub(super) fn equal16(a: &Block, b: &Block) -> u32 {
    imp::equal16(a, b)
}

/// Whether the first twelve bytes of `b` are four well-formed three-byte
/// UTF-8 sequences (U+0800..U+FFFF without the surrogates): the shape of
/// CJK text, checked four characters at a time. Lanes 0, 3, 6, 9 must be
/// leads `E1..=EC` or `EE`/`EF` (`E0` and `ED` have narrower second bytes and
/// are left to the byte-wise check), the others continuation bytes.
#[inline(always)]
pub(super) fn utf8_triples4(b: &Block) -> bool {
    imp::utf8_triples4(b)
}

/// Per-lane masks and expected values for [`utf8_triples4`]: a lead keeps
/// its top four bits (`1110`), a continuation its top two (`10`); lanes
/// 12..16 are masked out.
const TRIPLE_MASK: Block = [
    0xF0, 0xC0, 0xC0, 0xF0, 0xC0, 0xC0, 0xF0, 0xC0, 0xC0, 0xF0, 0xC0, 0xC0, 0, 0, 0, 0,
];
const TRIPLE_SHAPE: Block = [
    0xE0, 0x80, 0x80, 0xE0, 0x80, 0x80, 0xE0, 0x80, 0x80, 0xE0, 0x80, 0x80, 0, 0, 0, 0,
];
/// The lead lanes of [`TRIPLE_MASK`], as a bitmask.
const TRIPLE_LEADS: u32 = 1 | 1 << 3 | 1 << 6 | 1 << 9;

/// Index of the first string special (see [`string_specials16`]) at or
/// after `i`, or `stop`: sixteen bytes a step, then a word, then bytes. The
/// one scan of string bodies, for the fast path and the state machine alike.
#[inline(always)]
pub(super) fn plain_run(s: &[u8], mut i: usize, stop: usize) -> usize {
    while i + 16 <= stop {
        let m = string_specials16(block(s, i));
        if m != 0 {
            return i + m.trailing_zeros() as usize;
        }
        i += 16;
    }
    while i + 8 <= stop {
        let m = string_specials(load8(s, i));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < stop && !is_string_special(s[i]) {
        i += 1;
    }
    i
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::Block;
    use core::arch::x86_64::{
        _mm_and_si128, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_min_epu8,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_sub_epi8,
    };

    #[inline(always)]
    pub(super) fn string_specials16(b: &Block) -> u32 {
        // SAFETY: SSE2 is part of the x86_64 baseline, and `b` is 16
        // readable bytes (`loadu` has no alignment requirement).
        unsafe {
            let v = _mm_loadu_si128(b.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let low_or_high = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), low_or_high)) as u32
        }
    }

    #[inline(always)]
    pub(super) fn value_ends16(b: &Block) -> u32 {
        // SAFETY: as above.
        unsafe {
            let v = _mm_loadu_si128(b.as_ptr().cast());
            let comma = _mm_cmpeq_epi8(v, _mm_set1_epi8(b',' as i8));
            let bracket = _mm_cmpeq_epi8(v, _mm_set1_epi8(b']' as i8));
            let brace = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'}' as i8));
            let low_or_high = _mm_cmplt_epi8(v, _mm_set1_epi8(0x21));
            _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(comma, bracket),
                _mm_or_si128(brace, low_or_high),
            )) as u32
        }
    }

    #[inline(always)]
    pub(super) fn non_digits16(b: &Block) -> u32 {
        // SAFETY: as above. Digits become 0..=9 after the subtraction
        // (wrapping); a lane is a digit when its unsigned minimum with 9 is
        // itself.
        let digits = unsafe {
            let v = _mm_sub_epi8(
                _mm_loadu_si128(b.as_ptr().cast()),
                _mm_set1_epi8(b'0' as i8),
            );
            _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(9)), v)) as u32
        };
        digits ^ 0xFFFF
    }

    #[inline(always)]
    pub(super) fn non_whitespace16(b: &Block) -> u32 {
        // SAFETY: as above.
        let ws = unsafe {
            let v = _mm_loadu_si128(b.as_ptr().cast());
            let space = _mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8));
            let newline = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
            let cr = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8));
            let tab = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\t' as i8));
            _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(space, newline),
                _mm_or_si128(cr, tab),
            )) as u32
        };
        ws ^ 0xFFFF
    }

    #[inline(always)]
    pub(super) fn line_breaks16(b: &Block) -> u32 {
        // SAFETY: as above.
        unsafe {
            let v = _mm_loadu_si128(b.as_ptr().cast());
            let newline = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
            let cr = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8));
            let c2 = _mm_cmpeq_epi8(v, _mm_set1_epi8(0xC2u8 as i8));
            let e2 = _mm_cmpeq_epi8(v, _mm_set1_epi8(0xE2u8 as i8));
            _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(newline, cr),
                _mm_or_si128(c2, e2),
            )) as u32
        }
    }

    #[inline(always)]
    pub(super) fn equal16(a: &Block, b: &Block) -> u32 {
        // SAFETY: as above, for both blocks.
        unsafe {
            let x = _mm_loadu_si128(a.as_ptr().cast());
            let y = _mm_loadu_si128(b.as_ptr().cast());
            _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) as u32
        }
    }

    #[inline(always)]
    pub(super) fn non_spaces16(b: &Block) -> u32 {
        // SAFETY: as above.
        let spaces = unsafe {
            let v = _mm_loadu_si128(b.as_ptr().cast());
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8))) as u32
        };
        spaces ^ 0xFFFF
    }

    #[inline(always)]
    pub(super) fn utf8_triples4(b: &Block) -> bool {
        // SAFETY: as above; the constants are 16-byte arrays.
        unsafe {
            let v = _mm_loadu_si128(b.as_ptr().cast());
            let mask = _mm_loadu_si128(super::TRIPLE_MASK.as_ptr().cast());
            let shape = _mm_loadu_si128(super::TRIPLE_SHAPE.as_ptr().cast());
            let fits = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(v, mask), shape));
            let narrow = _mm_movemask_epi8(_mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(0xE0u8 as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(0xEDu8 as i8)),
            )) as u32;
            fits == 0xFFFF && narrow & super::TRIPLE_LEADS == 0
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use super::Block;
    use core::arch::wasm32::{
        i8x16_all_true, i8x16_bitmask, i8x16_eq, i8x16_lt, i8x16_splat, i8x16_sub, u8x16_lt, v128,
        v128_and, v128_load, v128_or,
    };

    #[inline(always)]
    fn load(b: &Block) -> v128 {
        // SAFETY: `b` is 16 readable bytes; wasm loads need no alignment.
        unsafe { v128_load(b.as_ptr().cast()) }
    }

    #[inline(always)]
    fn splat(byte: u8) -> v128 {
        i8x16_splat(byte as i8)
    }

    #[inline(always)]
    pub(super) fn string_specials16(b: &Block) -> u32 {
        let v = load(b);
        let quote = i8x16_eq(v, splat(b'"'));
        let backslash = i8x16_eq(v, splat(b'\\'));
        let low_or_high = i8x16_lt(v, splat(0x20));
        u32::from(i8x16_bitmask(v128_or(
            v128_or(quote, backslash),
            low_or_high,
        )))
    }

    #[inline(always)]
    pub(super) fn equal16(a: &Block, b: &Block) -> u32 {
        u32::from(i8x16_bitmask(i8x16_eq(load(a), load(b))))
    }

    #[inline(always)]
    pub(super) fn line_breaks16(b: &Block) -> u32 {
        let v = load(b);
        let breaks = v128_or(i8x16_eq(v, splat(b'\n')), i8x16_eq(v, splat(b'\r')));
        let leads = v128_or(i8x16_eq(v, splat(0xC2)), i8x16_eq(v, splat(0xE2)));
        u32::from(i8x16_bitmask(v128_or(breaks, leads)))
    }

    #[inline(always)]
    pub(super) fn non_digits16(b: &Block) -> u32 {
        let digits = u8x16_lt(i8x16_sub(load(b), splat(b'0')), splat(10));
        u32::from(i8x16_bitmask(digits)) ^ 0xFFFF
    }

    #[inline(always)]
    pub(super) fn non_spaces16(b: &Block) -> u32 {
        u32::from(i8x16_bitmask(i8x16_eq(load(b), splat(b' ')))) ^ 0xFFFF
    }

    #[inline(always)]
    pub(super) fn utf8_triples4(b: &Block) -> bool {
        let v = load(b);
        let fits = i8x16_eq(
            v128_and(v, load(&super::TRIPLE_MASK)),
            load(&super::TRIPLE_SHAPE),
        );
        let narrow = u32::from(i8x16_bitmask(v128_or(
            i8x16_eq(v, splat(0xE0)),
            i8x16_eq(v, splat(0xED)),
        )));
        i8x16_all_true(fits) && narrow & super::TRIPLE_LEADS == 0
    }
}

#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
)))]
use portable as imp;

/// The answers without vectors: SWAR words and byte loops, for any other
/// target, and for a wasm build without `simd128` (the README's way to run
/// in a runtime that lacks it). Compiled into the tests on every target, so
/// that its masks are checked against the byte tests too. (In wasm the
/// whitespace and number-end masks go unused, as with `simd128`.)
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
#[cfg(any(
    test,
    not(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ))
))]
mod portable {
    use super::{load8, string_specials, Block};

    /// One bit per byte from a mask with the high bit of each lane set.
    fn compress(m: u64) -> u32 {
        let mut out = 0;
        for k in 0..8 {
            out |= (((m >> (8 * k + 7)) & 1) as u32) << k;
        }
        out
    }

    pub(super) fn string_specials16(b: &Block) -> u32 {
        compress(string_specials(load8(b, 0))) | compress(string_specials(load8(b, 8))) << 8
    }

    pub(super) fn non_digits16(b: &Block) -> u32 {
        b.iter()
            .enumerate()
            .fold(0, |m, (k, &c)| m | u32::from(!c.is_ascii_digit()) << k)
    }

    pub(super) fn value_ends16(b: &Block) -> u32 {
        b.iter().enumerate().fold(0, |m, (k, &c)| {
            m | u32::from(matches!(c, b',' | b']' | b'}') || (c as i8) < 0x21) << k
        })
    }

    pub(super) fn non_whitespace16(b: &Block) -> u32 {
        b.iter().enumerate().fold(0, |m, (k, &c)| {
            m | u32::from(!matches!(c, b' ' | b'\n' | b'\r' | b'\t')) << k
        })
    }

    pub(super) fn equal16(a: &Block, b: &Block) -> u32 {
        a.iter()
            .zip(b)
            .enumerate()
            .fold(0, |m, (k, (x, y))| m | u32::from(x == y) << k)
    }

    pub(super) fn non_spaces16(b: &Block) -> u32 {
        b.iter()
            .enumerate()
            .fold(0, |m, (k, &c)| m | u32::from(c != b' ') << k)
    }

    pub(super) fn line_breaks16(b: &Block) -> u32 {
        b.iter().enumerate().fold(0, |m, (k, &c)| {
            m | u32::from(super::is_line_break_lead(c)) << k
        })
    }

    /// Byte by byte: the same answer, without the vector.
    pub(super) fn utf8_triples4(b: &Block) -> bool {
        let lead = |k: usize| super::TRIPLE_LEADS >> k & 1 == 1;
        (0..12).all(|k| b[k] & super::TRIPLE_MASK[k] == super::TRIPLE_SHAPE[k])
            && (0..12)
                .filter(|&k| lead(k))
                .all(|k| b[k] != 0xE0 && b[k] != 0xED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(b: &Block, f: impl Fn(u8) -> bool) -> u32 {
        b.iter()
            .enumerate()
            .fold(0, |m, (k, &c)| m | u32::from(f(c)) << k)
    }

    /// One implementation's masks, to check each against the byte tests.
    struct Masks {
        name: &'static str,
        specials: fn(&Block) -> u32,
        whitespace: fn(&Block) -> u32,
        digits: fn(&Block) -> u32,
        equal: fn(&Block, &Block) -> u32,
        spaces: fn(&Block) -> u32,
        value_ends: fn(&Block) -> u32,
        line_breaks: fn(&Block) -> u32,
        triples: fn(&Block) -> bool,
    }

    /// The target's own (SSE2 here) and the portable one, which a build
    /// without vectors uses.
    const IMPLEMENTATIONS: [Masks; 2] = [
        Masks {
            name: "target",
            specials: imp::string_specials16,
            whitespace: imp::non_whitespace16,
            digits: imp::non_digits16,
            equal: imp::equal16,
            spaces: imp::non_spaces16,
            value_ends: imp::value_ends16,
            line_breaks: imp::line_breaks16,
            triples: imp::utf8_triples4,
        },
        Masks {
            name: "portable",
            specials: portable::string_specials16,
            whitespace: portable::non_whitespace16,
            digits: portable::non_digits16,
            equal: portable::equal16,
            spaces: portable::non_spaces16,
            value_ends: portable::value_ends16,
            line_breaks: portable::line_breaks16,
            triples: portable::utf8_triples4,
        },
    ];

    #[test]
    fn masks_agree_with_the_byte_tests_for_every_byte_in_every_lane() {
        for m in &IMPLEMENTATIONS {
            let name = m.name;
            for c in 0..=255u8 {
                for lane in 0..16 {
                    for fill in [b'a', b' ', b'"', 0xC3, b'5'] {
                        let mut b = [fill; 16];
                        b[lane] = c;
                        let at = format!("{name}: byte {c:#x} in lane {lane} among {fill:#x}");
                        // Where the plain run ends (see string_specials16).
                        assert_eq!(
                            (m.specials)(&b).trailing_zeros(),
                            reference(&b, is_string_special).trailing_zeros(),
                            "specials, {at}"
                        );
                        assert_eq!(
                            (m.whitespace)(&b),
                            reference(&b, |c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t')),
                            "whitespace, {at}"
                        );
                        assert_eq!(
                            (m.digits)(&b),
                            reference(&b, |c| !c.is_ascii_digit()),
                            "digits, {at}"
                        );
                        let other = [fill; 16];
                        assert_eq!(
                            (m.equal)(&b, &other),
                            reference(&b, |c| c == fill),
                            "equal, {at}"
                        );
                        assert_eq!((m.spaces)(&b), reference(&b, |c| c != b' '), "spaces, {at}");
                        assert_eq!(
                            (m.value_ends)(&b),
                            reference(&b, |c| {
                                matches!(c, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t')
                                    || !(0x21..0x80).contains(&c)
                            }),
                            "value ends, {at}"
                        );
                        assert_eq!(
                            (m.line_breaks)(&b),
                            reference(&b, is_line_break_lead),
                            "line breaks, {at}"
                        );
                    }
                }
            }
        }
    }

    /// Four three-byte sequences `E1..=EC`/`EE`/`EF` + two continuation
    /// bytes each, checked one sequence at a time.
    fn triples_by_bytes(b: &Block) -> bool {
        (0..4).all(|n| {
            let (lead, c1, c2) = (b[3 * n], b[3 * n + 1], b[3 * n + 2]);
            matches!(lead, 0xE1..=0xEC | 0xEE | 0xEF)
                && (0x80..0xC0).contains(&c1)
                && (0x80..0xC0).contains(&c2)
        })
    }

    #[test]
    fn utf8_triples_agree_with_the_byte_test_for_every_byte_in_every_lane() {
        // "中文字符": four well-formed triples, then four bytes of padding.
        let text: Block = *b"\xE4\xB8\xAD\xE6\x96\x87\xE5\xAD\x97\xE7\xAC\xA6abcd";
        for m in &IMPLEMENTATIONS {
            assert!((m.triples)(&text), "{}", m.name);
            for c in 0..=255u8 {
                for lane in 0..16 {
                    let mut b = text;
                    b[lane] = c;
                    assert_eq!(
                        (m.triples)(&b),
                        triples_by_bytes(&b),
                        "{}: byte {c:#x} in lane {lane}",
                        m.name
                    );
                }
            }
        }
    }
}
