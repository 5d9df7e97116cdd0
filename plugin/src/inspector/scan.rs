//! The scanning loop: one pass over a chunk, resumable at every byte.
//!
//! This per-byte state machine is the reference for every verdict. Between
//! tokens (in a structural state) it hands over to the fast path in
//! `fast.rs`, which reads whole tokens that lie inside the chunk and stops
//! before anything else; the state machine then reads that token (one that
//! crosses the chunk end, reaches a limit or is erroneous) and produces the
//! exact kind and offset. Its own runs are still word-at-a-time where cheap:
//! string bodies eight bytes at a time (SWAR), indentation, digit runs, whole
//! UTF-8 sequences in place.

use super::go_fold::Folder;
use super::keys::KeyHasher;
use super::numbers::{NumberRange, MAX_EXACT_INTEGER};
use super::shapes::Shape;
use super::simd::plain_run;
use super::swar::skip_ws;
use super::utf8::{self, Seq};
use super::{Frame, Inspector, State};
use crate::violation::{Violation, ViolationKind as Kind};

/// Index in the chunk of absolute offset `abs`, clamped to the chunk.
#[inline(always)]
fn rel(abs: u64, base: u64, len: usize) -> usize {
    let r = abs.saturating_sub(base);
    if r >= len as u64 {
        len
    } else {
        r as usize
    }
}

#[inline(always)]
pub(super) fn hex_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'a'..=b'f' => Some(u32::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u32::from(b - b'A' + 10)),
        _ => None,
    }
}

impl Inspector {
    /// Scans one chunk (already cut at `max_body_bytes`).
    pub(super) fn scan(&mut self, s: &[u8]) -> Result<(), Violation> {
        let base = self.consumed;
        let len = s.len();
        let mut i = 0usize;
        let mut st = self.state;
        while i < len {
            if st.is_structural() {
                (i, st) = if self.check_number_range {
                    self.fast::<true>(s, i, st)
                } else {
                    self.fast::<false>(s, i, st)
                };
                if i == len {
                    break;
                }
            }
            match st {
                State::Str => {
                    let stop = rel(self.token_bound, base, len);
                    let run = i;
                    loop {
                        i = plain_run(s, i, stop);
                        if i < stop && s[i] >= 0x80 {
                            // Whole sequences in bulk; the first one that is
                            // not (malformed, or cut by the chunk end or the
                            // limit) one at a time, for the exact verdict.
                            match utf8::run(s, i, stop) {
                                Ok(j) => {
                                    i = j;
                                    continue;
                                }
                                Err(j) => i = j,
                            }
                            match utf8::sequence(s, i, stop) {
                                Seq::Valid(n) => {
                                    i += n;
                                    continue;
                                }
                                Seq::Invalid(at) => {
                                    return Err(Violation::at(Kind::InvalidUtf8, base + at as u64))
                                }
                                Seq::Incomplete => {}
                            }
                        }
                        break;
                    }
                    self.hash_key_bytes(&s[run..i]);
                    if i == len {
                        break;
                    }
                    let b = s[i];
                    let pos = base + i as u64;
                    if b == b'"' {
                        i += 1;
                        st = self.end_string()?;
                        continue;
                    }
                    if i == stop {
                        return Err(self.string_too_long(pos));
                    }
                    i += 1;
                    match b {
                        b'\\' => {
                            self.escape_start = pos;
                            st = State::Escape;
                        }
                        0x80.. => {
                            let Some(lead) = utf8::lead(b) else {
                                return Err(Violation::at(Kind::InvalidUtf8, pos));
                            };
                            self.hash_key_bytes(&[b]);
                            self.utf8_need = lead.need;
                            self.utf8_lo = lead.lo;
                            self.utf8_hi = lead.hi;
                            st = State::Utf8;
                        }
                        _ => return Err(Violation::at(Kind::SyntaxError, pos)),
                    }
                }
                State::Utf8 => {
                    let b = s[i];
                    let pos = base + i as u64;
                    if pos >= self.token_bound {
                        return Err(self.string_too_long(pos));
                    }
                    if b < self.utf8_lo || b > self.utf8_hi {
                        return Err(Violation::at(Kind::InvalidUtf8, pos));
                    }
                    self.hash_key_bytes(&[b]);
                    i += 1;
                    self.utf8_need -= 1;
                    self.utf8_lo = 0x80;
                    self.utf8_hi = 0xBF;
                    if self.utf8_need == 0 {
                        st = State::Str;
                    }
                }
                State::Escape => {
                    let b = s[i];
                    let pos = base + i as u64;
                    if pos >= self.token_bound {
                        return Err(self.string_too_long(pos));
                    }
                    let decoded = match b {
                        b'"' | b'\\' | b'/' => b,
                        b'b' => 0x08,
                        b'f' => 0x0C,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            self.hex_digits = 0;
                            self.hex_value = 0;
                            i += 1;
                            st = State::Unicode;
                            continue;
                        }
                        _ => return Err(Violation::at(Kind::SyntaxError, pos)),
                    };
                    self.hash_key_bytes(&[decoded]);
                    i += 1;
                    st = State::Str;
                }
                State::Unicode => {
                    let b = s[i];
                    let pos = base + i as u64;
                    if pos >= self.token_bound {
                        return Err(self.string_too_long(pos));
                    }
                    let Some(v) = hex_value(b) else {
                        return Err(Violation::at(Kind::SyntaxError, pos));
                    };
                    i += 1;
                    self.hex_value = self.hex_value * 16 + v;
                    self.hex_digits += 1;
                    if self.hex_digits == 4 {
                        st = self.end_unicode_escape()?;
                    }
                }
                State::LowBackslash => {
                    let b = s[i];
                    let pos = base + i as u64;
                    if b == b'\\' {
                        if pos >= self.token_bound {
                            return Err(self.string_too_long(pos));
                        }
                        self.escape_start = pos;
                        i += 1;
                        st = State::LowU;
                    } else {
                        // The high surrogate stands alone; `b` is read again as
                        // ordinary string content.
                        self.lone_high()?;
                        st = State::Str;
                    }
                }
                State::LowU => {
                    let pos = base + i as u64;
                    if pos >= self.token_bound {
                        return Err(self.string_too_long(pos));
                    }
                    if s[i] == b'u' {
                        self.hex_digits = 0;
                        self.hex_value = 0;
                        i += 1;
                        st = State::Unicode;
                    } else {
                        // Another kind of escape follows the high surrogate.
                        self.lone_high()?;
                        st = State::Escape;
                    }
                }
                State::AfterValue => {
                    i = skip_ws(s, i);
                    if i == len {
                        break;
                    }
                    let b = s[i];
                    let pos = base + i as u64;
                    let in_object = self.frames.last().is_some_and(|f| f.is_object);
                    match b {
                        b',' => {
                            i += 1;
                            st = if in_object { State::Key } else { State::Value };
                        }
                        b'}' if in_object => {
                            i += 1;
                            st = self.close();
                        }
                        b']' if !in_object && !self.frames.is_empty() => {
                            i += 1;
                            st = self.close();
                        }
                        _ => return Err(Violation::at(Kind::SyntaxError, pos)),
                    }
                }
                State::Key | State::ObjectFirst => {
                    i = skip_ws(s, i);
                    if i == len {
                        break;
                    }
                    let pos = base + i as u64;
                    match s[i] {
                        b'"' => {
                            i += 1;
                            self.begin_key(pos)?;
                            st = State::Str;
                        }
                        b'}' if st == State::ObjectFirst => {
                            i += 1;
                            st = self.close();
                        }
                        _ => return Err(Violation::at(Kind::SyntaxError, pos)),
                    }
                }
                State::Colon => {
                    i = skip_ws(s, i);
                    if i == len {
                        break;
                    }
                    if s[i] != b':' {
                        return Err(Violation::at(Kind::SyntaxError, base + i as u64));
                    }
                    i += 1;
                    st = State::Value;
                }
                State::Value | State::ArrayFirst => {
                    i = skip_ws(s, i);
                    if i == len {
                        break;
                    }
                    let b = s[i];
                    i += 1;
                    st = if b == b']' && st == State::ArrayFirst {
                        self.close()
                    } else {
                        self.begin_value(b, base + i as u64 - 1)?
                    };
                }
                State::NumInt | State::NumFrac | State::NumExp => {
                    let bound = if st == State::NumExp {
                        self.token_bound.min(self.exponent_bound)
                    } else {
                        self.token_bound
                    };
                    let stop = rel(bound, base, len);
                    while i < stop && s[i].is_ascii_digit() {
                        i += 1;
                    }
                    if i == len {
                        break;
                    }
                    st = self.number_step(s, st, base + i as u64, &mut i)?;
                }
                State::NumMinus
                | State::NumZero
                | State::NumDot
                | State::NumE
                | State::NumESign => {
                    st = self.number_step(s, st, base + i as u64, &mut i)?;
                }
                State::Literal => {
                    let lit = self.literal;
                    let mut p = usize::from(self.literal_pos);
                    while p < lit.len() && i < len {
                        if s[i] != lit[p] {
                            return Err(Violation::at(Kind::SyntaxError, base + i as u64));
                        }
                        i += 1;
                        p += 1;
                    }
                    if p == lit.len() {
                        st = self.after_value();
                    } else {
                        self.literal_pos = p as u8;
                    }
                }
                State::Done if self.lines => {
                    // Whitespace, then a newline before the next value.
                    while i < len && matches!(s[i], b' ' | b'\t' | b'\r') {
                        i += 1;
                    }
                    if i < len {
                        if s[i] != b'\n' {
                            return Err(Violation::at(Kind::TrailingData, base + i as u64));
                        }
                        i += 1;
                        st = State::NextLine;
                    }
                }
                State::Done => {
                    i = skip_ws(s, i);
                    if i < len {
                        return Err(Violation::at(Kind::TrailingData, base + i as u64));
                    }
                }
                State::Start | State::NextLine => {
                    // A byte order mark only at the very start of the body.
                    if base + i as u64 == 0 && s[i] == 0xEF {
                        i += 1;
                        st = State::Bom1;
                        continue;
                    }
                    i = skip_ws(s, i);
                    if i == len {
                        break;
                    }
                    let b = s[i];
                    i += 1;
                    let pos = base + i as u64 - 1;
                    if self.lines {
                        // The values of JSON Lines are elements of the body:
                        // as many as an array may have.
                        self.values += 1;
                        if self.values > self.bounds.array {
                            return Err(Violation::over(
                                Kind::ArrayTooLong,
                                self.bounds.array,
                                pos,
                            ));
                        }
                    }
                    st = self.begin_value(b, pos)?;
                }
                State::Bom1 => {
                    if s[i] != 0xBB {
                        return Err(Violation::at(Kind::SyntaxError, 0));
                    }
                    i += 1;
                    st = State::Bom2;
                }
                State::Bom2 => {
                    if s[i] != 0xBF {
                        return Err(Violation::at(Kind::SyntaxError, 0));
                    }
                    if !self.allow_bom {
                        return Err(Violation::at(Kind::Bom, 0));
                    }
                    i += 1;
                    st = State::Start;
                }
            }
        }
        if self.check_number_range && st.is_number() {
            self.number_piece(s, base, len);
        }
        self.state = st;
        self.consumed = base + len as u64;
        Ok(())
    }

    /// State after a complete value.
    #[inline(always)]
    fn after_value(&self) -> State {
        if self.frames.is_empty() {
            State::Done
        } else {
            State::AfterValue
        }
    }

    /// Starts the value whose first byte `b` is at `pos`.
    #[inline(always)]
    fn begin_value(&mut self, b: u8, pos: u64) -> Result<State, Violation> {
        let literal: &'static [u8] = match b {
            b'"' | b'{' | b'[' | b'-' | b'0'..=b'9' => b"",
            b't' => b"true",
            b'f' => b"false",
            b'n' => b"null",
            _ => return Err(Violation::at(Kind::SyntaxError, pos)),
        };
        if let Some(top) = self.frames.last_mut() {
            if !top.is_object {
                if top.count >= self.bounds.array {
                    return Err(Violation::over(Kind::ArrayTooLong, self.bounds.array, pos));
                }
                top.count += 1;
            }
        }
        Ok(match b {
            b'"' => {
                self.in_key = false;
                self.token_start = pos;
                self.token_bound = (pos + 1).saturating_add(self.bounds.string);
                State::Str
            }
            b'{' | b'[' => {
                if self.at_depth_limit() {
                    return Err(Violation::over(Kind::TooDeep, self.bounds.depth, pos));
                }
                if self.at_container_limit() {
                    return Err(Violation::over(
                        Kind::TooManyContainers,
                        self.bounds.containers,
                        pos,
                    ));
                }
                self.containers += 1;
                let is_object = b == b'{';
                self.frames.push(Frame {
                    count: 0,
                    keys_mark: self.keys.len(),
                    shape: Shape::None,
                    is_object,
                });
                if is_object {
                    State::ObjectFirst
                } else {
                    State::ArrayFirst
                }
            }
            b'-' | b'0'..=b'9' => {
                self.token_start = pos;
                self.token_bound = pos.saturating_add(self.bounds.number);
                match b {
                    b'-' => State::NumMinus,
                    b'0' => State::NumZero,
                    _ => State::NumInt,
                }
            }
            _ => {
                self.literal = literal;
                self.literal_pos = 1;
                State::Literal
            }
        })
    }

    /// Starts an object member whose key's opening quote is at `pos`.
    #[inline(always)]
    fn begin_key(&mut self, pos: u64) -> Result<(), Violation> {
        if let Some(top) = self.frames.last_mut() {
            if top.count >= self.bounds.entries {
                return Err(Violation::over(
                    Kind::TooManyEntries,
                    self.bounds.entries,
                    pos,
                ));
            }
            top.count += 1;
        }
        self.in_key = true;
        self.token_start = pos;
        self.token_bound = (pos + 1).saturating_add(self.bounds.key);
        self.key_hash = KeyHasher::new(self.seed);
        self.key_cut = false;
        self.folder = Folder::default();
        Ok(())
    }

    /// Closing quote of the current string.
    #[inline(always)]
    fn end_string(&mut self) -> Result<State, Violation> {
        if !self.in_key {
            return Ok(self.after_value());
        }
        if self.check_duplicates {
            let (shape, count, mark) = self
                .frames
                .last()
                .map_or((Shape::None, 0, 0), |f| (f.shape, f.count, f.keys_mark));
            if shape != Shape::None {
                // The key now being ended was counted when it began.
                self.leave_shape(count.saturating_sub(1));
            }
            self.folder.flush(&mut self.key_hash);
            if !self
                .keys
                .insert(self.key_hash.finish(), self.frames.len(), mark)
            {
                self.refuse_or_note(Violation::at(Kind::DuplicateKey, self.token_start))?;
            }
        }
        Ok(State::Colon)
    }

    /// Pops the innermost container (its closing bracket was just read).
    #[inline(always)]
    pub(super) fn close(&mut self) -> State {
        if let Some(frame) = self.frames.pop() {
            if frame.is_object && self.check_duplicates {
                match frame.shape {
                    Shape::None => {}
                    Shape::Follow(at) => self.shapes.unpin(at),
                    Shape::Record(at) => self.shapes.publish(at),
                }
                self.keys.truncate(frame.keys_mark);
            }
        }
        self.after_value()
    }

    /// The innermost object, whose first `matched` keys have been read,
    /// goes back to the duplicate table alone: the keys of a shape it
    /// followed go into the table, a recording is abandoned.
    #[inline(never)]
    pub(super) fn leave_shape(&mut self, matched: u64) {
        let depth = self.frames.len();
        let Some(frame) = self.frames.last_mut() else {
            return;
        };
        match std::mem::replace(&mut frame.shape, Shape::None) {
            Shape::None => {}
            Shape::Follow(at) => {
                let hashes = self.shapes.entry(at).map_or(&[][..], |e| e.hashes(matched));
                for &hash in hashes {
                    // Distinct by construction: the shape's keys are.
                    let fresh = self.keys.insert(hash, depth, frame.keys_mark);
                    debug_assert!(fresh);
                }
                self.shapes.unpin(at);
            }
            Shape::Record(at) => self.shapes.abandon(at),
        }
    }

    /// The violation for a string byte at `pos`, the first over its limit.
    fn string_too_long(&self, pos: u64) -> Violation {
        if self.in_key {
            Violation::over(Kind::KeyTooLong, self.bounds.key, pos)
        } else {
            Violation::over(Kind::StringTooLong, self.bounds.string, pos)
        }
    }

    /// One byte of a number, `s[*i]` at `pos`, that is not a plain digit
    /// continuation: decides whether it extends the number, ends it (and is
    /// read again), or is an error.
    #[inline(always)]
    fn number_step(
        &mut self,
        s: &[u8],
        st: State,
        pos: u64,
        i: &mut usize,
    ) -> Result<State, Violation> {
        let b = s[*i];
        let digit = b.is_ascii_digit();
        let next = match st {
            State::NumMinus if b == b'0' => Some(State::NumZero),
            State::NumMinus if digit => Some(State::NumInt),
            State::NumZero if digit => None,
            State::NumInt if digit => Some(State::NumInt),
            State::NumZero | State::NumInt if b == b'.' => Some(State::NumDot),
            State::NumDot | State::NumFrac if digit => Some(State::NumFrac),
            State::NumZero | State::NumInt | State::NumFrac if b == b'e' || b == b'E' => {
                Some(State::NumE)
            }
            State::NumE if b == b'+' || b == b'-' => Some(State::NumESign),
            State::NumE | State::NumESign if digit => {
                self.exponent_bound = pos.saturating_add(self.bounds.exponent);
                Some(State::NumExp)
            }
            State::NumExp if digit => Some(State::NumExp),
            State::NumZero | State::NumInt | State::NumFrac | State::NumExp => {
                // The number is complete; `b` belongs to what follows.
                if self.check_number_range {
                    self.number_piece(s, pos - *i as u64, *i);
                    self.number_ends()?;
                }
                return Ok(self.after_value());
            }
            _ => None,
        };
        let Some(next) = next else {
            // A sign, dot or exponent without digits, or a leading zero.
            return Err(Violation::at(Kind::SyntaxError, pos));
        };
        if pos >= self.token_bound {
            return Err(Violation::over(
                Kind::NumberTooLong,
                self.bounds.number,
                pos,
            ));
        }
        if next == State::NumExp && pos >= self.exponent_bound {
            return Err(Violation::over(
                Kind::ExponentTooLong,
                self.bounds.exponent,
                pos,
            ));
        }
        *i += 1;
        Ok(next)
    }

    /// With `check_number_range`: the bytes of the current number in
    /// `s[..end]` (from its first, when it starts in this chunk).
    #[cold]
    #[inline(never)]
    fn number_piece(&mut self, s: &[u8], base: u64, end: usize) {
        let from = if self.token_start >= base {
            self.number_range = NumberRange::default();
            (self.token_start - base) as usize
        } else {
            0
        };
        self.number_range.push(s.get(from..end).unwrap_or_default());
    }

    /// The current number is complete: with `check_number_range`, whether it
    /// is in range (the violation points at its first byte).
    pub(super) fn number_ends(&mut self) -> Result<(), Violation> {
        if !self.check_number_range || self.number_range.in_range() {
            return Ok(());
        }
        let v = if self.number_range.is_integer() {
            Violation::over(Kind::NumberOutOfRange, MAX_EXACT_INTEGER, self.token_start)
        } else {
            Violation::at(Kind::NumberOutOfRange, self.token_start)
        };
        self.refuse_or_note(v)
    }

    /// The four hex digits of a `\u` escape are in `hex_value`.
    fn end_unicode_escape(&mut self) -> Result<State, Violation> {
        let unit = self.hex_value;
        if self.high != 0 {
            if (0xDC00..=0xDFFF).contains(&unit) {
                let cp = 0x10000 + ((self.high - 0xD800) << 10) + (unit - 0xDC00);
                self.high = 0;
                self.hash_code_point(cp);
                return Ok(State::Str);
            }
            self.lone_high()?;
        }
        if (0xD800..=0xDBFF).contains(&unit) {
            self.high = unit;
            self.high_start = self.escape_start;
            return Ok(State::LowBackslash);
        }
        if (0xDC00..=0xDFFF).contains(&unit) && !self.allow_lone_surrogates {
            self.refuse_or_note(Violation::at(Kind::LoneSurrogate, self.escape_start))?;
        }
        self.hash_code_point(unit);
        Ok(State::Str)
    }

    /// The pending high surrogate has no low half.
    fn lone_high(&mut self) -> Result<(), Violation> {
        if !self.allow_lone_surrogates {
            self.refuse_or_note(Violation::at(Kind::LoneSurrogate, self.high_start))?;
        }
        self.hash_code_point(self.high);
        self.high = 0;
        Ok(())
    }

    #[inline(always)]
    fn hash_key_bytes(&mut self, bytes: &[u8]) {
        if self.in_key && self.check_duplicates && !self.key_cut {
            if self.fold_keys {
                self.folder.write(&mut self.key_hash, bytes);
            } else {
                self.key_hash.write(bytes);
            }
        }
    }

    /// Hashes a decoded `\u` escape. A lone surrogate (allowed by
    /// `allow_lone_surrogates`) counts as U+FFFD, as parsers that replace it
    /// (Go's among them) see it: `"a\ud800"` and `"a\udbff"` are one key
    /// there, so they are a duplicate here. A `\u0000` ends the key for the
    /// comparison, as C parsers read it (`"role\u0000x"` is `"role"` to
    /// cJSON, yajl and json-c): a duplicate of `"role"` here.
    fn hash_code_point(&mut self, cp: u32) {
        if cp == 0 && self.in_key {
            self.key_cut = true;
            return;
        }
        let cp = if (0xD800..=0xDFFF).contains(&cp) {
            0xFFFD
        } else {
            cp
        };
        let (bytes, n) = utf8::encode(cp);
        self.hash_key_bytes(&bytes[..n]);
    }
}
