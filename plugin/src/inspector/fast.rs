//! The fast path: straight-line handling of *complete* tokens that lie
//! inside the current chunk, between two structural states.
//!
//! The per-byte state machine in `scan.rs` is the reference. This module only
//! ever commits a token it has seen whole and found valid and within every
//! limit, and it commits it with exactly the updates the state machine would
//! make (frame counts, depth, key fingerprints). Anything else (a token that
//! runs past the end of the chunk or reaches a limit, an error of any kind, a
//! lone surrogate) makes it stop *before* that token, untouched, so the state
//! machine re-reads it and produces the exact verdict, kind and offset. That
//! is what keeps the fast path invisible: chunking only decides which of the
//! two paths reads a token, never what is concluded from it.
//!
//! It therefore needs no absolute offsets and never builds a `Violation`.

use super::keys::{hash_slice, KeyHasher};
use super::scan::hex_value;
use super::swar::{is_string_special, load8, skip_digits, skip_ws, string_specials};
use super::utf8;
use super::{Frame, Inspector, State};

/// Token length limits as chunk-relative `usize` distances.
#[derive(Clone, Copy)]
struct Room {
    key: usize,
    string: usize,
    number: usize,
}

fn room(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

impl State {
    /// States between tokens, where the fast path can take over.
    #[inline(always)]
    pub(super) fn is_structural(self) -> bool {
        matches!(
            self,
            State::AfterValue
                | State::Key
                | State::ObjectFirst
                | State::Colon
                | State::Value
                | State::ArrayFirst
        )
    }
}

impl Inspector {
    /// Reads complete tokens from `s[i..]` starting in the structural state
    /// `st`, and returns where it stopped and the state there (a structural
    /// state, or `Done` after the outermost container closed).
    ///
    /// One pass of the loop follows the grammar in order, `,` then key, `:`,
    /// value, so the common `,"key":value` path runs straight through
    /// without going back to a dispatch on the state.
    #[inline(never)]
    pub(super) fn fast(&mut self, s: &[u8], mut i: usize, mut st: State) -> (usize, State) {
        let room = Room {
            key: room(self.bounds.key),
            string: room(self.bounds.string),
            number: room(self.bounds.number),
        };
        loop {
            if st == State::AfterValue {
                i = skip_ws(s, i);
                let Some(&b) = s.get(i) else { break };
                let Some(top) = self.frames.last() else { break };
                match (b, top.is_object) {
                    (b',', true) => st = State::Key,
                    (b',', false) => st = State::Value,
                    (b'}', true) | (b']', false) => {
                        i += 1;
                        st = self.close();
                        continue;
                    }
                    _ => break,
                }
                i += 1;
            }
            if st == State::Key || st == State::ObjectFirst {
                i = skip_ws(s, i);
                let Some(&b) = s.get(i) else { break };
                if b == b'}' && st == State::ObjectFirst {
                    i += 1;
                    st = self.close();
                    continue;
                }
                match self.fast_key(s, i, room) {
                    Some(end) => i = end,
                    None => break,
                }
                st = State::Colon;
            }
            if st == State::Colon {
                i = skip_ws(s, i);
                if s.get(i) != Some(&b':') {
                    break;
                }
                i += 1;
                st = State::Value;
            }
            if st == State::Value || st == State::ArrayFirst {
                i = skip_ws(s, i);
                let Some(&b) = s.get(i) else { break };
                if b == b']' && st == State::ArrayFirst {
                    i += 1;
                    st = self.close();
                    continue;
                }
                match self.fast_value(s, i, b, room) {
                    Some((end, next)) => {
                        i = end;
                        st = next;
                    }
                    None => break,
                }
                continue;
            }
            // `Done`: the outermost container closed.
            break;
        }
        (i, st)
    }

    /// A whole object member key at `s[i]` (which should be its opening
    /// quote), counted and fingerprinted. Returns the index after its closing
    /// quote, or `None` to leave it to the state machine.
    #[inline(always)]
    fn fast_key(&mut self, s: &[u8], i: usize, room: Room) -> Option<usize> {
        if s.get(i) != Some(&b'"') {
            return None;
        }
        let depth = self.frames.len();
        let top = *self.frames.last()?;
        if top.count >= self.bounds.entries {
            return None;
        }
        let stop = (i + 1).saturating_add(room.key).min(s.len());
        let end = if self.check_duplicates {
            let (end, hash) = string_end::<true>(s, i + 1, stop, self.seed)?;
            // A duplicate is not committed: the state machine finds it again
            // and reports it at the right offset.
            if !self.keys.insert(hash, depth, top.keys_mark) {
                return None;
            }
            end
        } else {
            string_end::<false>(s, i + 1, stop, 0)?.0
        };
        if let Some(top) = self.frames.last_mut() {
            top.count += 1;
        }
        Some(end)
    }

    /// A whole value starting with `b = s[i]` inside a container, or the
    /// opening bracket of one. Returns the index after it and the next state.
    #[inline(always)]
    fn fast_value(&mut self, s: &[u8], i: usize, b: u8, room: Room) -> Option<(usize, State)> {
        let top = *self.frames.last()?;
        if !top.is_object && top.count >= self.bounds.array {
            return None;
        }
        let (end, next) = match b {
            b'"' => {
                let stop = (i + 1).saturating_add(room.string).min(s.len());
                (string_end::<false>(s, i + 1, stop, 0)?.0, State::AfterValue)
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(s, i)?;
                if end - i > room.number {
                    return None;
                }
                (end, State::AfterValue)
            }
            b't' => (literal_end(s, i, b"true")?, State::AfterValue),
            b'f' => (literal_end(s, i, b"false")?, State::AfterValue),
            b'n' => (literal_end(s, i, b"null")?, State::AfterValue),
            b'{' | b'[' => {
                if self.frames.len() as u64 >= self.bounds.depth {
                    return None;
                }
                let next = if b == b'{' {
                    State::ObjectFirst
                } else {
                    State::ArrayFirst
                };
                (i + 1, next)
            }
            _ => return None,
        };
        // Committed: the same updates as `begin_value`, in the same order
        // (the element is counted in the enclosing array, then a container
        // opens).
        if let Some(top) = self.frames.last_mut() {
            if !top.is_object {
                top.count += 1;
            }
        }
        if b == b'{' || b == b'[' {
            self.frames.push(Frame {
                count: 0,
                keys_mark: self.keys.len(),
                is_object: b == b'{',
            });
        }
        Some((end, next))
    }
}

/// `lit` at `s[i..]` in full: the index after it.
#[inline(always)]
fn literal_end(s: &[u8], i: usize, lit: &[u8]) -> Option<usize> {
    let end = i + lit.len();
    (s.get(i..end)? == lit).then_some(end)
}

/// A complete, well-formed number token starting at `s[i]` (`-` or a
/// digit): the index of the byte that ends it. `None` when it is malformed
/// or may continue past the end of the chunk.
#[inline(always)]
fn number_end(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i + usize::from(s[i] == b'-');
    match s.get(j)? {
        b'0' => {
            j += 1;
            // A leading zero followed by a digit is an error.
            if s.get(j).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        b'1'..=b'9' => j = skip_digits(s, j + 1),
        _ => return None,
    }
    if s.get(j) == Some(&b'.') {
        let k = skip_digits(s, j + 1);
        if k == j + 1 {
            return None;
        }
        j = k;
    }
    if matches!(s.get(j), Some(b'e' | b'E')) {
        j += 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let k = skip_digits(s, j);
        if k == j {
            return None;
        }
        j = k;
    }
    // The terminating byte must be in this chunk: digits may follow.
    (j < s.len()).then_some(j)
}

/// A complete string body from `s[i]` (just after the opening quote) with
/// all its content before `stop` (the chunk end or the first byte over the
/// length limit). Returns the index after the closing quote and, when `HASH`,
/// the hash of the decoded bytes.
#[inline(always)]
fn string_end<const HASH: bool>(
    s: &[u8],
    mut i: usize,
    stop: usize,
    seed: u64,
) -> Option<(usize, u64)> {
    let start = i;
    let mut hasher = KeyHasher::new(seed);
    // Start of the raw run not yet hashed.
    let mut run = i;
    loop {
        while i + 8 <= stop {
            let m = string_specials(load8(s, i));
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        while i < stop && !is_string_special(s[i]) {
            i += 1;
        }
        let b = *s.get(i)?;
        if b == b'"' {
            // The closing quote does not count towards the limit.
            if !HASH {
                return Some((i + 1, 0));
            }
            if run == start {
                // No escapes: the decoded key is the raw text.
                return Some((i + 1, hash_slice(seed, s, start, i)));
            }
            hasher.write(&s[run..i]);
            return Some((i + 1, hasher.finish()));
        }
        if i >= stop {
            return None;
        }
        if b >= 0x80 {
            i = utf8::run(s, i, stop)?;
        } else if b == b'\\' {
            if HASH {
                hasher.write(&s[run..i]);
            }
            i = escape_end::<HASH>(s, i, stop, &mut hasher)?;
            run = i;
        } else {
            // A control character.
            return None;
        }
    }
}

/// A complete escape at `s[i]` (a backslash), wholly before `stop`, with its
/// decoded bytes fed to `hasher` when `HASH`: the index after it. A `\u`
/// high surrogate is only taken together with its low half; lone halves are
/// left to the state machine (which knows `allow_lone_surrogates`).
#[inline(always)]
fn escape_end<const HASH: bool>(
    s: &[u8],
    i: usize,
    stop: usize,
    hasher: &mut KeyHasher,
) -> Option<usize> {
    if i + 2 > stop {
        return None;
    }
    let decoded = match s[i + 1] {
        b @ (b'"' | b'\\' | b'/') => b,
        b'b' => 0x08,
        b'f' => 0x0C,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => return unicode_escape_end::<HASH>(s, i, stop, hasher),
        _ => return None,
    };
    if HASH {
        hasher.push(decoded);
    }
    Some(i + 2)
}

/// The `\uXXXX` escape at `s[i]`, with its low half if it is a high
/// surrogate.
#[inline(always)]
fn unicode_escape_end<const HASH: bool>(
    s: &[u8],
    i: usize,
    stop: usize,
    hasher: &mut KeyHasher,
) -> Option<usize> {
    if i + 6 > stop {
        return None;
    }
    let unit = hex4(&s[i + 2..i + 6])?;
    let (cp, end) = match unit {
        0xD800..=0xDBFF => {
            if i + 12 > stop || s[i + 6] != b'\\' || s[i + 7] != b'u' {
                return None;
            }
            let low = hex4(&s[i + 8..i + 12])?;
            if !(0xDC00..=0xDFFF).contains(&low) {
                return None;
            }
            (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), i + 12)
        }
        0xDC00..=0xDFFF => return None,
        _ => (unit, i + 6),
    };
    if HASH {
        let (bytes, n) = utf8::encode(cp);
        hasher.write(&bytes[..n]);
    }
    Some(end)
}

#[inline(always)]
fn hex4(h: &[u8]) -> Option<u32> {
    let mut v = 0;
    for &b in h {
        v = v * 16 + hex_value(b)?;
    }
    Some(v)
}
