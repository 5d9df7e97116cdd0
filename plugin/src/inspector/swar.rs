//! Word-at-a-time helpers: eight bytes per step through string bodies,
//! indentation and digit runs, shared by the fast path and the state machine.
//! Gaps between tokens and digit runs first take a sixteen-byte step with
//! `simd` where the chunk allows, and fall back to words and bytes near its
//! end.
//!
//! Every mask here is exact in its *lowest* flagged lane (borrows and carries
//! can only disturb lanes above a true hit), so `trailing_zeros() / 8` is the
//! index of the first byte of interest.

#[cfg(not(target_arch = "wasm32"))]
use super::simd::non_whitespace16;
use super::simd::{block, non_digits16, non_spaces16};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
const ZEROS: u64 = ONES * 0x30;

/// Eight bytes at `s[i..i + 8]`, little-endian (first byte lowest).
#[inline(always)]
pub(super) fn load8(s: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(w)
}

/// High bit set in the first byte lane of `w` that is `"`, `\`, below 0x20
/// or at least 0x80. Only that lowest flag is exact: the subtraction's
/// borrow out of a lane that matches may flag the lane above it too, which
/// callers never read (they want where a plain run ends).
#[inline(always)]
pub(super) fn string_specials(w: u64) -> u64 {
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    lanes_equal(w, b'"') | lanes_equal(w, b'\\') | (control | w) & HIGHS
}

/// High bit set in the first byte lane of `w` that is `byte` (and maybe,
/// by a borrow, in lanes above it): not zero exactly when some lane is.
/// Also the header names' search for `_` and `.` (`crate::ascii`).
#[inline(always)]
pub(crate) fn lanes_equal(w: u64, byte: u8) -> u64 {
    let x = w ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// The byte-wise twin of [`string_specials`].
#[inline(always)]
pub(super) fn is_string_special(b: u8) -> bool {
    b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b)
}

/// High bit set in the byte lanes of `w` that are not ASCII digits.
#[inline(always)]
fn non_digits(w: u64) -> u64 {
    // Digits become 0..=9; a lane is not a digit when it is then above 9:
    // its high bit is set, or adding 0x76 sets it. A carry out of a lane only
    // happens when that lane is already flagged.
    let x = w ^ ZEROS;
    (x.wrapping_add(ONES * 0x76) | x) & HIGHS
}

/// Index of the first byte at or after `i` that is not an ASCII digit
/// (`s.len()` if none).
#[inline(always)]
pub(super) fn skip_digits(s: &[u8], mut i: usize) -> usize {
    // Sixteen at a time where the chunk allows: most runs (a fraction, an
    // id) end within one step.
    while i + 16 <= s.len() {
        let m = non_digits16(block(s, i));
        if m != 0 {
            return i + m.trailing_zeros() as usize;
        }
        i += 16;
    }
    while i + 8 <= s.len() {
        let m = non_digits(load8(s, i));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Index of the first non-whitespace byte at or after `i`.
#[inline(always)]
pub(super) fn skip_ws(s: &[u8], i: usize) -> usize {
    // Compact JSON: nothing to skip.
    if s.get(i).is_some_and(|&b| b > b' ') {
        return i;
    }
    // In wasm the run loop is out of line (see `skip_ws_run`), so the
    // common pretty-printed gaps are handled here.
    #[cfg(target_arch = "wasm32")]
    let i = match short_gap(s, i) {
        Ok(j) => return j,
        Err(k) => k,
    };
    // Natively, a line break and its indentation in one step when they fit
    // in sixteen bytes, as most do.
    #[cfg(not(target_arch = "wasm32"))]
    let i = match whitespace16(s, i) {
        Some(Ok(j)) => return j,
        Some(Err(k)) => k,
        None => i,
    };
    skip_ws_run(s, i)
}

/// One sixteen-byte step through whitespace at `s[i]`, natively: `Ok` with
/// the index where it ends within the block, `Err(i + 16)` when all sixteen
/// bytes are whitespace, `None` when the chunk has no sixteen bytes there.
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn whitespace16(s: &[u8], i: usize) -> Option<Result<usize, usize>> {
    if i + 16 > s.len() {
        return None;
    }
    Some(match non_whitespace16(block(s, i)) {
        0 => Err(i + 16),
        others => Ok(i + others.trailing_zeros() as usize),
    })
}

/// A line break and indentation: when the whitespace at `s[i]` is an
/// optional newline and fewer than 32 spaces (sixteen levels at two spaces
/// a level), `Ok` with the index after it; otherwise `Err` with an index
/// inside the whitespace to go on from.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
#[inline(always)]
fn short_gap(s: &[u8], mut i: usize) -> Result<usize, usize> {
    if s.get(i) == Some(&b'\n') {
        i += 1;
    }
    for _ in 0..2 {
        if i + 16 > s.len() {
            return Err(i);
        }
        let others = non_spaces16(block(s, i));
        if others != 0 {
            let j = i + others.trailing_zeros() as usize;
            return if s[j] > b' ' { Ok(j) } else { Err(j) };
        }
        i += 16;
    }
    Err(i)
}

/// [`skip_ws`] past a run of whitespace longer than its inline step. Out of
/// line: inlined into the inspector's big loops, Cranelift keeps this loop's
/// index in a stack slot, on its own in a register (citm_catalog, 71%
/// indentation, gains about 15% through the wasm); natively, inlined, it
/// made citm_catalog 4% cheaper but canada 5% dearer (register pressure in
/// the loops around it).
#[inline(never)]
fn skip_ws_run(s: &[u8], mut i: usize) -> usize {
    loop {
        // Indentation: sixteen spaces a step in wasm, where each trip round
        // this loop costs more than the vector compare.
        #[cfg(target_arch = "wasm32")]
        if i + 16 <= s.len() {
            let others = non_spaces16(block(s, i));
            if others == 0 {
                i += 16;
                continue;
            }
            i += others.trailing_zeros() as usize;
        }
        #[cfg(not(target_arch = "wasm32"))]
        match whitespace16(s, i) {
            Some(Ok(j)) => return j,
            Some(Err(k)) => {
                i = k;
                continue;
            }
            None => {}
        }
        match s.get(i) {
            Some(b' ' | b'\n' | b'\r' | b'\t') => i += 1,
            _ => return i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_digits_stops_at_the_first_non_digit() {
        // Lengths around the 8- and 16-byte steps, a byte of every value at
        // every position.
        for len in [12, 16, 17, 31, 33, 40] {
            for b in 0..=255u8 {
                for at in 0..len {
                    let mut s: Vec<u8> = (0..len).map(|k| b'0' + (k % 10) as u8).collect();
                    s[at] = b;
                    let want = if b.is_ascii_digit() { s.len() } else { at };
                    assert_eq!(skip_digits(&s, 0), want, "byte {b:#x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn skip_ws_stops_at_the_first_non_whitespace() {
        for b in 0..=255u8 {
            for len in 0..40 {
                for at in 0..=len {
                    let mut s: Vec<u8> = (0..len).map(|k| b" \n\r\t"[k % 4]).collect();
                    let mut s2 = s.clone();
                    if at < len {
                        s[at] = b;
                        s2[at] = b;
                    }
                    let want = s
                        .iter()
                        .position(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
                        .unwrap_or(len);
                    assert_eq!(skip_ws(&s, 0), want, "byte {b:#x} at {at} of {len}");
                    let from = short_gap(&s, 0).unwrap_or_else(|k| skip_ws_run(&s, k));
                    assert_eq!(from, want, "short gap, byte {b:#x} at {at} of {len}");
                    s2.iter_mut().take(at).for_each(|c| *c = b' ');
                    let want2 = s2
                        .iter()
                        .position(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
                        .unwrap_or(len);
                    assert_eq!(
                        skip_ws(&s2, 0),
                        want2,
                        "spaces, byte {b:#x} at {at} of {len}"
                    );
                    let mut s3 = s2.clone();
                    s3.insert(0, b'\n');
                    let from = short_gap(&s3, 0).unwrap_or_else(|k| skip_ws_run(&s3, k));
                    assert_eq!(from, want2 + 1, "newline, byte {b:#x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn string_specials_agree_with_the_byte_test() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut s = *b"abcdefgh";
                s[at] = b;
                let m = string_specials(load8(&s, 0));
                let first = if m == 0 {
                    8
                } else {
                    (m.trailing_zeros() / 8) as usize
                };
                let want = s.iter().position(|&c| is_string_special(c)).unwrap_or(8);
                assert_eq!(first, want, "byte {b:#x} at {at}");
            }
        }
    }
}
