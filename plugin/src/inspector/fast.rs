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
use super::shapes::{Shape, LEADS};
use super::simd::plain_run;
#[cfg(not(target_arch = "wasm32"))]
use super::simd::{block, value_ends16};
use super::swar::{skip_digits, skip_ws};
use super::utf8;
use super::{Bounds, Frame, Inspector, State, MIN_EXPONENT_DIGITS};

/// Token length limits as chunk-relative `usize` distances, worked out once
/// per inspector. Read from the inspector where they are needed rather than
/// carried through the loops: in wasm every value live across the fast
/// path's loops competes for Cranelift's registers with the scan index.
#[derive(Debug, Clone, Copy)]
pub(super) struct Room {
    key: usize,
    string: usize,
    number: usize,
}

impl Room {
    pub(super) fn from(bounds: &Bounds) -> Self {
        let room = |limit: u64| usize::try_from(limit).unwrap_or(usize::MAX);
        Self {
            key: room(bounds.key),
            string: room(bounds.string),
            number: room(bounds.number),
        }
    }
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

/// How a container loop ended.
enum Step {
    /// A container opened or closed: carry on with the new innermost one.
    Switch(usize, State),
    /// The next token is not for the fast path: hand over here.
    Stop(usize, State),
}

impl Inspector {
    /// Reads complete tokens from `s[i..]` starting in the structural state
    /// `st`, and returns where it stopped and the state there (a structural
    /// state, or `Done` after the outermost container closed).
    ///
    /// Each container kind has its own loop, which keeps the innermost
    /// frame's count in a register and follows the grammar in order (for
    /// objects `,` key `:` value), so the common paths run straight through.
    ///
    /// `RANGED` is [`super::Numbers::Interoperable`]: a compile-time copy of
    /// the loops whose number walk also declines numbers not plainly in
    /// range (see [`number_end`]), so that the default path does not pay
    /// even a test per number for it (one cost 1% to 8% more instructions on
    /// every body).
    #[inline(never)]
    pub(super) fn fast<const RANGED: bool>(
        &mut self,
        s: &[u8],
        mut i: usize,
        mut st: State,
    ) -> (usize, State) {
        loop {
            // `Done` once the outermost container has closed.
            let Some(&top) = self.frames.last() else {
                return (i, st);
            };
            let step = if top.is_object {
                self.fast_object::<RANGED>(s, i, st, top)
            } else {
                self.fast_array::<RANGED>(s, i, st, top)
            };
            match step {
                Step::Switch(at, next) => (i, st) = (at, next),
                Step::Stop(at, next) => return (at, next),
            }
        }
    }

    /// Elements of the innermost array, `top`, from state `st`.
    #[inline(always)]
    fn fast_array<const RANGED: bool>(
        &mut self,
        s: &[u8],
        mut i: usize,
        mut st: State,
        top: Frame,
    ) -> Step {
        let mut count = top.count;
        let step = loop {
            if st == State::AfterValue {
                i = skip_ws(s, i);
                match s.get(i) {
                    Some(b',') => st = State::Value,
                    Some(b']') => break self.fast_close(i),
                    _ => break Step::Stop(i, st),
                }
                i += 1;
            }
            i = skip_ws(s, i);
            let Some(&b) = s.get(i) else {
                break Step::Stop(i, st);
            };
            if b == b']' && st == State::ArrayFirst {
                break self.fast_close(i);
            }
            if count >= self.bounds.array {
                break Step::Stop(i, st);
            }
            if let Some(end) = self.value_end::<RANGED>(s, i, b) {
                count += 1;
                i = end;
                st = State::AfterValue;
                continue;
            }
            match self.fast_open(i, b, top, count + 1) {
                Some(step) => return step,
                None => break Step::Stop(i, st),
            }
        };
        // On `Stop` the frame is still the innermost one; on close it is gone.
        if let Step::Stop(..) = step {
            self.set_count(top, count);
        }
        step
    }

    /// Members of the innermost object, `top`, from state `st`.
    #[inline(always)]
    fn fast_object<const RANGED: bool>(
        &mut self,
        s: &[u8],
        mut i: usize,
        mut st: State,
        top: Frame,
    ) -> Step {
        let mut count = top.count;
        let mut shape = top.shape;
        let depth = self.frames.len();
        let mut leads = LEADS;
        let step = loop {
            // Where the lead of this member (see `shapes.rs`) starts, when
            // all of it is read here; `usize::MAX` otherwise (an `Option`
            // here measured 1.5% dearer on twitter.json).
            let mut lead = usize::MAX;
            if st == State::AfterValue {
                if let (Shape::Follow(at), true) = (shape, leads) {
                    let missed;
                    (i, count, st, missed) = self.follow_members::<RANGED>(s, i, count, at);
                    // A lead that differs (the same shape at another
                    // indentation) is not tried again for this object.
                    leads = !missed;
                }
                if st == State::AfterValue {
                    lead = i;
                    i = skip_ws(s, i);
                    match s.get(i) {
                        Some(b',') => st = State::Key,
                        Some(b'}') => break self.fast_close(i),
                        _ => break Step::Stop(i, st),
                    }
                    i += 1;
                }
            }
            if st == State::Key || st == State::ObjectFirst {
                i = skip_ws(s, i);
                match s.get(i) {
                    Some(b'"') if count < self.bounds.entries => {}
                    Some(b'}') if st == State::ObjectFirst => break self.fast_close(i),
                    _ => break Step::Stop(i, st),
                }
                match self.key_end(s, i, depth, top.keys_mark, count, &mut shape) {
                    Some(end) => i = end,
                    None => break Step::Stop(i, st),
                }
                count += 1;
                st = State::Colon;
            }
            if st == State::Colon {
                i = skip_ws(s, i);
                if s.get(i) != Some(&b':') {
                    break Step::Stop(i, st);
                }
                i += 1;
                st = State::Value;
                if let (Shape::Follow(at), true) = (shape, leads && lead != usize::MAX) {
                    self.shapes.add_lead(at, count - 1, s, lead, i);
                }
            }
            i = skip_ws(s, i);
            let Some(&b) = s.get(i) else {
                break Step::Stop(i, st);
            };
            if let Some(end) = self.value_end::<RANGED>(s, i, b) {
                i = end;
                st = State::AfterValue;
                continue;
            }
            match self.fast_open(i, b, top, count) {
                Some(step) => return step,
                None => break Step::Stop(i, st),
            }
        };
        if let Step::Stop(..) = step {
            self.set_count(top, count);
        }
        step
    }

    /// Writes the innermost frame's count back (it is `top`, still open).
    #[inline(always)]
    fn set_count(&mut self, top: Frame, count: u64) {
        if let Some(f) = self.frames.last_mut() {
            debug_assert_eq!(f.keys_mark, top.keys_mark);
            f.count = count;
        }
    }

    /// The closing bracket at `s[i]` of the innermost container (its count
    /// is not written back: nothing reads a closed frame).
    #[inline(always)]
    fn fast_close(&mut self, i: usize) -> Step {
        Step::Switch(i + 1, self.close())
    }

    /// The opening bracket `b` at `s[i]`, if it is one and within the depth
    /// limit. The enclosing container `top` gets its final `count` (with
    /// this value counted) before the new frame goes on top of it.
    #[inline(always)]
    fn fast_open(&mut self, i: usize, b: u8, top: Frame, count: u64) -> Option<Step> {
        let is_object = match b {
            b'{' => true,
            b'[' => false,
            _ => return None,
        };
        if self.at_depth_limit() || self.at_container_limit() {
            return None;
        }
        self.containers += 1;
        self.set_count(top, count);
        self.frames.push(Frame {
            count: 0,
            keys_mark: self.keys.len(),
            shape: Shape::None,
            is_object,
        });
        let next = if is_object {
            State::ObjectFirst
        } else {
            State::ArrayFirst
        };
        Some(Step::Switch(i + 1, next))
    }

    /// A whole scalar, or a whole array of scalars within every limit,
    /// starting with `b = s[i]`: the index after it.
    ///
    /// Small arrays of scalars (coordinate pairs, id lists, `[]`) are most
    /// of the arrays in real documents. Taken whole, they cost no frame
    /// push and pop and no trip through [`Inspector::fast`]'s dispatch; one
    /// that holds a container or anything the fast path would not commit is
    /// left, untouched, to the frame-by-frame path.
    #[inline(always)]
    fn value_end<const RANGED: bool>(&self, s: &[u8], i: usize, b: u8) -> Option<usize> {
        if b != b'[' {
            return scalar_end::<RANGED>(s, i, b, &self.room);
        }
        // The array would be one level deeper than the innermost frame (and
        // with `max_containers` set none is taken whole: arrays are counted
        // as they open a frame).
        if self.frames.len() as u64 >= self.bounds.whole_array_depth {
            return None;
        }
        let mut j = skip_ws(s, i + 1);
        if s.get(j) == Some(&b']') {
            return Some(j + 1);
        }
        let mut count = 0;
        loop {
            if count >= self.bounds.array {
                return None;
            }
            j = scalar_end::<RANGED>(s, j, *s.get(j)?, &self.room)?;
            count += 1;
            j = skip_ws(s, j);
            match s.get(j) {
                Some(b',') => j = skip_ws(s, j + 1),
                Some(b']') => return Some(j + 1),
                _ => return None,
            }
        }
    }

    /// A whole member key at `s[i]` (its opening quote), the key number
    /// `count` of the innermost object (at `depth`, keys from `mark`),
    /// checked against the object's other keys. Returns the index after its
    /// closing quote, or `None` to leave it to the state machine.
    ///
    /// An object that repeats a recorded shape has its keys compared with
    /// the shape's, byte for byte, and skips the hashing; see `shapes.rs`.
    /// `shape` is the innermost frame's, kept in a local by the caller and
    /// written to the frame here whenever it changes.
    #[inline(always)]
    fn key_end(
        &mut self,
        s: &[u8],
        i: usize,
        depth: usize,
        mark: usize,
        count: u64,
        shape: &mut Shape,
    ) -> Option<usize> {
        if let Shape::Follow(at) = *shape {
            if let Some(end) = self.shapes.matches(at, count, s, i + 1) {
                return Some(end);
            }
            self.leave_shape(count);
            *shape = Shape::None;
        }
        let stop = (i + 1).saturating_add(self.room.key).min(s.len());
        if !self.check_duplicates {
            return Some(string_end::<false>(s, i + 1, stop, 0)?.0);
        }
        let j = plain_run(s, i + 1, stop);
        if s.get(j) != Some(&b'"') {
            // Escapes or non-ASCII text (or the end of the chunk or of the
            // limit): not for shapes.
            if *shape != Shape::None {
                self.leave_shape(count);
                *shape = Shape::None;
            }
            if self.fold_keys {
                // Folded, such keys are the state machine's (see `Folder`).
                return None;
            }
            let (end, hash) = string_end_mixed::<true>(s, i + 1, j, stop, self.seed)?;
            // A duplicate is not committed: the state machine finds it again
            // and reports it at the right offset.
            return self.keys.insert(hash, depth, mark).then_some(end);
        }
        if count == 0 {
            if let Some(at) = self.shapes.follow(s, i + 1, j) {
                *shape = Shape::Follow(at);
                self.set_shape(*shape);
                return Some(j + 1);
            }
        }
        let hash = if self.fold_keys {
            folded_hash(self.seed, s, i + 1, j)
        } else {
            hash_slice::<false>(self.seed, s, i + 1, j)
        };
        if !self.keys.insert(hash, depth, mark) {
            return None;
        }
        match *shape {
            Shape::None if count == 0 => {
                if let Some(recording) = self.shapes.record(s, i + 1, j, hash) {
                    *shape = recording;
                    self.set_shape(recording);
                }
            }
            Shape::Record(at) if !self.shapes.record_key(at, s, i + 1, j, hash) => {
                self.leave_shape(count);
                *shape = Shape::None;
            }
            _ => {}
        }
        Some(j + 1)
    }

    /// Members of the innermost object, which follows shape `at` and has
    /// `count` members so far, from `s[i]` just after a value: as long as
    /// the next member's lead is the shape's and its value is a scalar or
    /// an array of scalars, the member is taken with one compare and the
    /// value read as [`Inspector::value_end`] reads it. Returns where it
    /// stopped, the new count, the state there (`AfterValue` before a lead
    /// it could not take, `Value` before a value it did not take) and
    /// whether the shape had a lead there that differs.
    #[inline(always)]
    fn follow_members<const RANGED: bool>(
        &self,
        s: &[u8],
        mut i: usize,
        mut count: u64,
        at: u16,
    ) -> (usize, u64, State, bool) {
        let Some(entry) = self.shapes.entry(at) else {
            return (i, count, State::AfterValue, false);
        };
        // No limit check: a shape's keys were all counted within
        // `max_object_entries` when it was recorded, under the same limits.
        let last = entry.len();
        debug_assert!(last <= self.bounds.entries);
        while count < last {
            let end = match entry.lead(count, s, i) {
                Ok(end) => end,
                Err(missed) => return (i, count, State::AfterValue, missed),
            };
            count += 1;
            i = skip_ws(s, end);
            let Some(&b) = s.get(i) else {
                return (i, count, State::Value, false);
            };
            match self.value_end::<RANGED>(s, i, b) {
                Some(end) => i = end,
                None => return (i, count, State::Value, false),
            }
        }
        (i, count, State::AfterValue, false)
    }

    /// Sets the innermost frame's shape.
    #[inline(always)]
    fn set_shape(&mut self, shape: Shape) {
        if let Some(f) = self.frames.last_mut() {
            f.shape = shape;
        }
    }
}

/// [`hash_slice`] of a plain key with its ASCII letters folded
/// (`reject_case_insensitive`), out of line. Measured natively, the fold
/// inlined beside the default hash cost every body 1% to 3% more
/// instructions, and a folded twin of the key path out of line 2% to 4%
/// (its call takes the object loop's registers); this call costs the
/// default path one test per key.
#[cold]
#[inline(never)]
fn folded_hash(seed: u64, s: &[u8], from: usize, to: usize) -> u64 {
    hash_slice::<true>(seed, s, from, to)
}

/// A whole string, number or literal starting with `b = s[i]`: the index
/// after it.
#[inline(always)]
fn scalar_end<const RANGED: bool>(s: &[u8], i: usize, b: u8, room: &Room) -> Option<usize> {
    match b {
        b'"' => {
            let stop = (i + 1).saturating_add(room.string).min(s.len());
            Some(string_end::<false>(s, i + 1, stop, 0)?.0)
        }
        b'-' | b'0'..=b'9' => {
            let end = number_end::<RANGED>(s, i)?;
            (end - i <= room.number).then_some(end)
        }
        b't' => literal_end(s, i, b"true"),
        b'f' => literal_end(s, i, b"false"),
        b'n' => literal_end(s, i, b"null"),
        _ => None,
    }
}

/// `lit` at `s[i..]` in full: the index after it.
#[inline(always)]
fn literal_end(s: &[u8], i: usize, lit: &[u8]) -> Option<usize> {
    let end = i + lit.len();
    (s.get(i..end)? == lit).then_some(end)
}

/// Integers of up to 15 digits are below 10^15, so within 2^53.
const PLAINLY_IN_RANGE_INTEGER_DIGITS: usize = 15;
/// With at most 15 integer digits and an exponent of at most two digits,
/// a number is below 10^114: no double overflows there.
const PLAINLY_IN_RANGE_EXPONENT_DIGITS: usize = 2;
/// Without an exponent, a fraction of up to 300 digits is above 10^-301:
/// no double rounds it to zero.
const PLAINLY_IN_RANGE_FRACTION_DIGITS: usize = 300;

/// A complete, well-formed number token starting at `s[i]` (`-` or a
/// digit): the index of the byte that ends it. `None` when it is malformed
/// or may continue past the end of the chunk.
///
/// Where the chunk has room, the end is first *guessed* as the next byte
/// that may follow a value (a vector compare of the next 16 bytes, and of
/// the 16 after them only when those hold none), then checked against the
/// grammar walk. The guess does not depend on the walk, so the
/// next token can start before the walk's chain of digit runs (load,
/// compare, count) is done; a wrong guess (a malformed number, or one
/// followed by a byte that cannot follow a value) declines the token, and
/// the state machine reads it.
///
/// Native builds only: there the guess takes two fifths off the time on
/// canada.json (with 24% more instructions); in wasm, where the loop's time
/// goes to Cranelift's spills rather than to this chain, it added 3% to 14%
/// more instructions and no speed, so there it is compiled out.
///
/// With `RANGED` ([`super::Numbers::Interoperable`]) it also declines any
/// number that is not plainly in range, leaving the exact check to the
/// state machine: more than 15 integer digits (10^15 and over may pass
/// 2^53) or more than two exponent digits (10^100 and over may overflow).
/// Ids and amounts are rarely either.
#[inline(always)]
fn number_end<const RANGED: bool>(s: &[u8], i: usize) -> Option<usize> {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(guess) = number_end_guess(s, i) {
        // A branch, not a select: the guess must not wait for the walk.
        if number_walk::<RANGED>(s, i) != Some(guess) {
            return None;
        }
        return Some(guess);
    }
    number_walk::<RANGED>(s, i)
}

/// The first byte within 32 of `s[i]` that may follow a value, if there is
/// one and the chunk has 32 bytes there.
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn number_end_guess(s: &[u8], i: usize) -> Option<usize> {
    if i + 32 > s.len() {
        return None;
    }
    // The second block only when the first has no end: most numbers are
    // shorter than sixteen bytes.
    let mut ends = value_ends16(block(s, i));
    if ends == 0 {
        ends = value_ends16(block(s, i + 16)) << 16;
    }
    (ends != 0).then(|| i + ends.trailing_zeros() as usize)
}

/// [`number_end`] by the grammar, digit run by digit run.
#[inline(always)]
fn number_walk<const RANGED: bool>(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i + usize::from(s[i] == b'-');
    // Where the digits start, to count them for `RANGED`.
    let digits_from = j;
    match s.get(j)? {
        b'0' => {
            j += 1;
            // A leading zero followed by a digit is an error.
            if s.get(j).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        b'1'..=b'9' => {
            let k = skip_digits(s, j + 1);
            if RANGED && k - j > PLAINLY_IN_RANGE_INTEGER_DIGITS {
                return None;
            }
            j = k;
        }
        _ => return None,
    }
    if s.get(j) == Some(&b'.') {
        let k = skip_digits(s, j + 1);
        if k == j + 1 || (RANGED && k - j - 1 > PLAINLY_IN_RANGE_FRACTION_DIGITS) {
            return None;
        }
        j = k;
    }
    if matches!(s.get(j), Some(b'e' | b'E')) {
        // With an exponent, 16 digits may make an id beyond 2^53.
        if RANGED && j - digits_from > PLAINLY_IN_RANGE_INTEGER_DIGITS + 1 {
            return None;
        }
        j += 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let k = skip_digits(s, j);
        // Longer exponents are left to the state machine, which holds them
        // to `max_exponent_digits` (never below three).
        let most = if RANGED {
            PLAINLY_IN_RANGE_EXPONENT_DIGITS
        } else {
            MIN_EXPONENT_DIGITS as usize
        };
        if k == j || k - j > most {
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
///
/// Most strings, and nearly all keys, are plain ASCII: they are found and
/// hashed here in one sweep; the rest continue in [`string_end_mixed`].
#[inline(always)]
fn string_end<const HASH: bool>(
    s: &[u8],
    i: usize,
    stop: usize,
    seed: u64,
) -> Option<(usize, u64)> {
    let j = plain_run(s, i, stop);
    // The closing quote does not count towards the limit: it may be at `stop`.
    if s.get(j) == Some(&b'"') {
        let hash = if HASH {
            hash_slice::<false>(seed, s, i, j)
        } else {
            0
        };
        return Some((j + 1, hash));
    }
    string_end_mixed::<HASH>(s, i, j, stop, seed)
}

/// [`string_end`] for a string that started at `start` and has a special
/// byte (or `stop`) at `i`: non-ASCII text and escapes.
#[inline(never)]
fn string_end_mixed<const HASH: bool>(
    s: &[u8],
    start: usize,
    mut i: usize,
    stop: usize,
    seed: u64,
) -> Option<(usize, u64)> {
    let mut hasher = KeyHasher::new(seed);
    // Start of the raw run not yet hashed.
    let mut run = start;
    loop {
        let b = *s.get(i)?;
        if b == b'"' {
            if !HASH {
                return Some((i + 1, 0));
            }
            hasher.write(&s[run..i]);
            return Some((i + 1, hasher.finish()));
        }
        if i >= stop {
            return None;
        }
        if b >= 0x80 {
            i = utf8::run(s, i, stop).ok()?;
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
        i = plain_run(s, i, stop);
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
        // A NUL ends a key for the comparison (see `Inspector::hash_code_point`):
        // left to the state machine, like lone halves.
        0 if HASH => return None,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// With room for the guess, `number_end` is the grammar walk's answer
    /// when the byte after the number may follow a value, and declines
    /// (`None`) otherwise; it never gives an end the walk would not.
    #[test]
    fn guessed_number_ends_agree_with_the_grammar_walk() {
        let numbers = [
            "0",
            "-0",
            "7",
            "-12",
            "10.5",
            "-0.25e-3",
            "1E+9",
            "65.613616999999977",
            "-65.613616999999977e100",
            "01",
            "1.",
            "1e",
            "-",
            "1.2.3",
            "1e5e5",
            "00",
            "-a",
            // Ends at the last lane of the first block, the first lane of
            // the second, the last lane of the second, and beyond both.
            "123456789012345",
            "1234567890123456",
            "1234567890123456789012345678901",
            "12345678901234567890123456789012",
            "123456789012345678901234567890",
        ];
        let followers = [
            ",", "]", "}", " ", "\n", "\t", "\r", "x", "-", ".", "\"", "/", "\u{e9}",
        ];
        for number in numbers {
            for follower in followers {
                let mut s = format!("{number}{follower}").into_bytes();
                // Room for the guess's 32 bytes.
                s.resize(s.len() + 40, b' ');
                let walk = number_walk::<false>(&s, 0);
                let got = number_end::<false>(&s, 0);
                let follows_value = matches!(follower, "," | "]" | "}" | " " | "\n" | "\t" | "\r");
                match (walk, got) {
                    (Some(w), Some(g)) => assert_eq!(w, g, "{number:?} then {follower:?}"),
                    (Some(w), None) => assert!(
                        cfg!(not(target_arch = "wasm32")) && (!follows_value || w != number.len()),
                        "{number:?} then {follower:?}: the walk ends at {w}, the guess declined"
                    ),
                    (None, got) => assert_eq!(got, None, "{number:?} then {follower:?}"),
                }
                if follows_value && walk == Some(number.len()) {
                    assert_eq!(got, Some(number.len()), "{number:?} then {follower:?}");
                }
            }
        }
    }

    /// For interoperable numbers the walk also declines whatever is not
    /// plainly in range, and nothing else.
    #[test]
    fn ranged_walks_decline_exactly_the_numbers_not_plainly_in_range() {
        for (number, plain) in [
            ("123456789012345", true),
            ("-123456789012345.678901234567890", true),
            ("1234567890123456", false),
            ("-1234567890123456", false),
            ("0.0000000000000000001", true),
            ("1e99", true),
            ("-1.5E-99", true),
            ("1e+99", true),
            ("1e100", false),
            ("1e-100", false),
            ("1e007", false),
            ("0e999", false),
        ] {
            let s = format!("{number},").into_bytes();
            assert_eq!(number_walk::<false>(&s, 0), Some(number.len()), "{number}");
            let ranged = number_walk::<true>(&s, 0);
            assert_eq!(ranged, plain.then_some(number.len()), "{number}");
            let mut padded = s.clone();
            padded.resize(s.len() + 40, b' ');
            assert_eq!(number_end::<true>(&padded, 0), ranged, "{number} with room");
        }
    }
}
