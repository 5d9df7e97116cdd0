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
//! inside an object or array is a `syntax_error` there, and so is one of
//! those three characters anywhere (outside a string the scanner refuses
//! it anyway), at its first byte.

use super::{Inspector, Violation, ViolationKind};

impl Inspector {
    /// [`Inspector::scan`] of a JSON Lines chunk: the bytes before each
    /// line break are scanned first, so that a violation before it wins,
    /// then the line break is judged where it stands.
    pub(super) fn scan_lines(&mut self, s: &[u8]) -> Result<(), Violation> {
        let base = self.consumed;
        let mut from = 0;
        let mut at = 0;
        while let Some(k) = s
            .get(at..)
            .and_then(|rest| rest.iter().position(|&b| may_break_a_line(b)))
            .map(|k| at + k)
        {
            at = k + 1;
            let here = base + k as u64;
            let line_break = matches!(s[k], b'\n' | b'\r');
            let start = if line_break {
                here
            } else {
                match self.separator_length(s, k) {
                    Some(len) => here.saturating_sub(len - 1),
                    None => continue,
                }
            };
            self.scan(&s[from..k])?;
            from = k;
            if !line_break || !self.frames.is_empty() {
                return Err(Violation::at(ViolationKind::SyntaxError, start));
            }
        }
        self.scan(&s[from..])?;
        self.remember_tail(s);
        Ok(())
    }

    /// The length of U+0085, U+2028 or U+2029 when `s[k]` is that
    /// character's last byte; its first bytes may have come in an earlier
    /// chunk (`line_tail` holds the last two).
    fn separator_length(&self, s: &[u8], k: usize) -> Option<u64> {
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

    /// Keeps the body's last two bytes for [`Inspector::separator_start`].
    fn remember_tail(&mut self, s: &[u8]) {
        match s {
            [.., a, b] => self.line_tail = [*a, *b],
            [b] => self.line_tail = [self.line_tail[1], *b],
            [] => {}
        }
    }
}

/// Bytes that may end a line: `\n`, `\r`, and the last bytes of U+0085
/// (`C2 85`), U+2028 (`E2 80 A8`) and U+2029 (`E2 80 A9`).
#[inline(always)]
fn may_break_a_line(b: u8) -> bool {
    matches!(b, b'\n' | b'\r' | 0x85 | 0xA8 | 0xA9)
}
