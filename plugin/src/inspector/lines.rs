//! JSON Lines: no line break inside a value.
//!
//! JSON Lines and NDJSON put one value on a line, and NDJSON says outright
//! that a value holds no `\n` or `\r`. Readers that split the body into
//! lines and skip a line they cannot parse (a loop over
//! `body.splitlines()`, `jsonlines` with `skip_invalid`, npm's `ndjson`
//! with `strict: false`) read the pieces of a value spread over lines as
//! values of their own, past the count that `max_array_elements` puts on
//! values; and Python's `str.splitlines`, which the PyPI `ndjson` package
//! uses, also ends a line at U+0085, U+2028 and U+2029, which JSON allows
//! raw in a string, so a string holding them is cut into lines there (and
//! the package joins them back with `,`, turning `"is,admin"` and
//! `"is<U+2028>admin"` into one key). So with `lines`, a `\n` or `\r`
//! inside an object or array is a `syntax_error` there (once a token it
//! ends is judged), and so, unless `allow_unicode_line_breaks`, is one of
//! those three characters in a string, at its first byte, unless the
//! scanner refuses one of its first bytes first (a string over
//! `max_string_bytes`; outside a string its first byte, as `syntax_error`
//! or `trailing_data`).

use super::simd::{block, is_line_break_lead, line_breaks16};
use super::{Inspector, Violation, ViolationKind};

impl Inspector {
    /// [`Inspector::scan`] of a JSON Lines chunk: the bytes up to each
    /// line break are scanned first, so that a violation before it wins,
    /// then the line break is judged where it stands.
    pub(super) fn scan_lines(&mut self, s: &[u8]) -> Result<(), Violation> {
        let base = self.consumed;
        // A separator whose first bytes came in the chunks before ends in
        // this one's first two bytes.
        let separators_refused = !self.allow_unicode_line_breaks;
        if separators_refused {
            for k in 0..s.len().min(2) {
                match self.separator_ending_at(s, k) {
                    Some(len) if len > k + 1 => {
                        let start = (base + k as u64 + 1).saturating_sub(len as u64);
                        return Err(Violation::at(ViolationKind::SyntaxError, start));
                    }
                    _ => {}
                }
            }
        }
        let mut from = 0;
        let mut at = 0;
        while let Some(k) = next_break_lead(s, at) {
            at = k + 1;
            // What to scan first: through a line break (whitespace inside a
            // container, so a token it ends is judged first; a control
            // byte in a string, refused at its offset), or a separator's
            // bytes but its last (as a chunk that cut it would have:
            // outside a string its first byte is the scanner's to refuse).
            let (breaks, first) = match s.get(k..) {
                Some([b'\n' | b'\r', ..]) => (true, k + 1),
                Some([0xC2, 0x85, ..]) if separators_refused => (false, k + 1),
                Some([0xE2, 0x80, 0xA8 | 0xA9, ..]) if separators_refused => (false, k + 2),
                // Another character, or a separator this chunk cuts (the
                // next one's first bytes end it).
                _ => continue,
            };
            self.scan(&s[from..first])?;
            from = first;
            if !breaks || !self.frames.is_empty() {
                return Err(Violation::at(ViolationKind::SyntaxError, base + k as u64));
            }
        }
        self.scan(&s[from..])?;
        self.remember_tail(s);
        Ok(())
    }

    /// The length of U+0085, U+2028 or U+2029 when `s[k]` is that
    /// character's last byte; its first bytes may have come in an earlier
    /// chunk (`line_tail` holds the last two).
    fn separator_ending_at(&self, s: &[u8], k: usize) -> Option<usize> {
        let before = |back: usize| match k.checked_sub(back) {
            Some(i) => s.get(i).copied(),
            None => self.line_tail.get(2 - (back - k)).copied(),
        };
        match s.get(k)? {
            0x85 if before(1) == Some(0xC2) => Some(2),
            0xA8 | 0xA9 if before(1) == Some(0x80) && before(2) == Some(0xE2) => Some(3),
            _ => None,
        }
    }

    /// Keeps the body's last two bytes for [`Inspector::separator_ending_at`].
    fn remember_tail(&mut self, s: &[u8]) {
        match s {
            [.., a, b] => self.line_tail = [*a, *b],
            [b] => self.line_tail = [self.line_tail[1], *b],
            [] => {}
        }
    }
}

/// The index of the first byte at or after `at` that may start a line
/// break (see [`line_breaks16`]), thirty-two bytes at a time (one branch
/// for two blocks: a line of JSON holds none for hundreds of bytes), then
/// the last few bytes one by one.
#[inline(always)]
fn next_break_lead(s: &[u8], mut at: usize) -> Option<usize> {
    while at + 32 <= s.len() {
        let mask = line_breaks16(block(s, at)) | line_breaks16(block(s, at + 16)) << 16;
        if mask != 0 {
            return Some(at + mask.trailing_zeros() as usize);
        }
        at += 32;
    }
    let rest = s.get(at..)?;
    rest.iter()
        .position(|&b| is_line_break_lead(b))
        .map(|k| at + k)
}
