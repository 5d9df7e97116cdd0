//! Object shapes: the key lists of recently seen objects, so that an object
//! whose keys repeat an earlier object's (the items of an array, the same
//! record type again) is checked for duplicates by comparing raw key bytes
//! instead of hashing every key into the duplicate table.
//!
//! Hashing and tabling keys was a fifth to a third of all the work on real
//! documents (twitter.json, API bodies), and those documents are made of a
//! few shapes repeated many times.
//!
//! Why it is sound:
//! - A shape is recorded only from an object whose keys were all *plain*
//!   (printable ASCII without `"` or `\`), all read by the fast path and all
//!   put through the duplicate table, so its keys are pairwise distinct and
//!   each one's decoded bytes are its raw bytes.
//! - An object *follows* a shape while its key number `k` has exactly the
//!   raw bytes of the shape's key `k`, position by position; its keys so far
//!   are then distinct shape keys, so none is a duplicate, and none is put in
//!   the table.
//! - At the first key that differs (or when the state machine reads one of
//!   its keys), the hashes of the keys matched so far, kept in the shape, go
//!   into the duplicate table, and the object carries on the ordinary way.
//! - A shape followed by an open object is *pinned* and never overwritten,
//!   so those hashes are still there when they are needed.
//!
//! Memory is fixed: [`SLOTS`] shapes of at most [`MAX_KEYS`] keys and
//! [`MAX_BYTES`] key bytes, and a recording stack of at most
//! [`RECORD_BYTES`] bytes and [`RECORD_KEYS`] keys; anything bigger is simply
//! not recorded.

use super::simd::{block, equal16};

/// Shapes kept: sets chosen by the first key, of [`WAYS`] shapes each.
const SETS: usize = 8;
/// Shapes in one set, so that two shapes whose first keys pick the same
/// set (`"areas"` holding `"areaId"` objects in citm_catalog) do not evict
/// each other at every object.
const WAYS: usize = 2;
/// Shapes kept.
const SLOTS: usize = SETS * WAYS;
/// How many times in a row a shape must fail to be of use before another
/// may take its place.
const MAX_CREDIT: u8 = 3;
/// Keys in one shape.
const MAX_KEYS: usize = 48;
/// Key bytes in one shape.
const MAX_BYTES: usize = 768;
/// Key bytes being recorded, over all open objects.
const RECORD_BYTES: usize = 2048;
/// Keys being recorded, over all open objects.
const RECORD_KEYS: usize = 256;

/// What an open object is doing with shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Neither: its keys go through the duplicate table.
    None,
    /// Its keys so far are the first keys of the shape in this slot, and
    /// are not in the duplicate table.
    Follow(u16),
    /// Its keys so far are plain and in the duplicate table, and their raw
    /// bytes are on the recording stack from these marks (bytes, keys).
    Record(u16, u16),
}

/// One recorded key list.
#[derive(Clone)]
struct Entry {
    /// The keys end to end, then 16 spare bytes so that a 16-byte load from
    /// any key start stays inside the array.
    bytes: [u8; MAX_BYTES + 16],
    /// Where each key ends in `bytes`; key `k` starts where `k - 1` ends.
    ends: [u16; MAX_KEYS],
    /// Each key's hash, as the duplicate table takes it.
    hashes: [u64; MAX_KEYS],
    /// Keys held; 0 is an empty slot.
    len: usize,
    /// Open objects following this shape.
    pins: u32,
    /// Raised when an object follows it, lowered when a new shape wants
    /// its place; it is replaced only at zero.
    credit: u8,
}

impl Entry {
    const EMPTY: Entry = Entry {
        bytes: [0; MAX_BYTES + 16],
        ends: [0; MAX_KEYS],
        hashes: [0; MAX_KEYS],
        len: 0,
        pins: 0,
        credit: 0,
    };

    /// The bounds of key `k` in `bytes`.
    #[inline(always)]
    fn span(&self, k: usize) -> Option<(usize, usize)> {
        if k >= self.len {
            return None;
        }
        let start = if k == 0 {
            0
        } else {
            usize::from(self.ends[k - 1])
        };
        Some((start, usize::from(self.ends[k])))
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("len", &self.len)
            .field("pins", &self.pins)
            .finish_non_exhaustive()
    }
}

/// The shapes, and the raw keys of the objects being recorded.
#[derive(Debug, Clone, Default)]
pub(super) struct Shapes {
    /// Empty until the first recording, then [`SLOTS`] entries.
    entries: Vec<Entry>,
    /// Raw key bytes of the objects being recorded, innermost last.
    recorded: Vec<u8>,
    /// The length of each of those keys.
    recorded_lens: Vec<u16>,
}

/// The first slot of the set for a shape whose first key is `key`: from its
/// length and its first and last two bytes, which tell apart the first keys
/// of real documents well enough and cost no loop. Unseeded: a set only
/// chooses where to look, and every key is compared in full.
#[inline(always)]
fn set_of(key: &[u8]) -> usize {
    let byte = |k: usize| u64::from(key.get(k).copied().unwrap_or(0));
    let n = key.len();
    let w = n as u64
        ^ byte(0) << 8
        ^ byte(1) << 16
        ^ byte(n.wrapping_sub(2)) << 24
        ^ byte(n.wrapping_sub(1)) << 32;
    let set = (w.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 61) as usize % SETS;
    set * WAYS
}

/// Whether `s[from..from + len]` is the start of `recorded` (which has 16
/// bytes to spare after it): sixteen bytes a step, since a slice compare is
/// a call to a byte loop in wasm, and long keys (twitter.json's
/// `profile_*`) are common.
#[inline(never)]
fn same_bytes(s: &[u8], from: usize, len: usize, recorded: &[u8]) -> bool {
    let mut k = 0;
    while k < len {
        let want = if len - k >= 16 {
            0xFFFF
        } else {
            (1u32 << (len - k)) - 1
        };
        if from + k + 16 > s.len() {
            return s[from + k..from + len] == recorded[k..len];
        }
        if equal16(block(s, from + k), block(recorded, k)) & want != want {
            return false;
        }
        k += 16;
    }
    true
}

impl Shapes {
    /// The shape whose first key is `s[from..to]` (followed by its closing
    /// quote), pinned, if there is one.
    #[inline(always)]
    pub(super) fn follow(&mut self, s: &[u8], from: usize, to: usize) -> Option<u16> {
        let set = set_of(s.get(from..to)?);
        for at in set..set + WAYS {
            if self.matches(at as u16, 0, s, from) == Some(to + 1) {
                let entry = &mut self.entries[at];
                entry.pins += 1;
                entry.credit = (entry.credit + 1).min(MAX_CREDIT);
                return Some(at as u16);
            }
        }
        None
    }

    /// Key `k` of shape `at` is at `s[from..]`, followed by its closing
    /// quote: the index after the quote.
    #[inline(always)]
    pub(super) fn matches(&self, at: u16, k: u64, s: &[u8], from: usize) -> Option<usize> {
        let entry = self.entries.get(usize::from(at))?;
        let (start, end) = entry.span(usize::try_from(k).ok()?)?;
        let len = end - start;
        let quote = from + len;
        if s.get(quote) != Some(&b'"') {
            return None;
        }
        let same = if len <= 16 && from + 16 <= s.len() {
            let want = (1u32 << len) - 1;
            equal16(block(s, from), block(&entry.bytes, start)) & want == want
        } else {
            same_bytes(s, from, len, &entry.bytes[start..])
        };
        if !same {
            return None;
        }
        Some(quote + 1)
    }

    /// The hashes of the first `n` keys of shape `at`, which an object that
    /// stops following it must put in the duplicate table.
    pub(super) fn hashes(&self, at: u16, n: u64) -> &[u64] {
        let Some(entry) = self.entries.get(usize::from(at)) else {
            return &[];
        };
        let n = usize::try_from(n).unwrap_or(usize::MAX).min(entry.len);
        &entry.hashes[..n]
    }

    /// An object stops following shape `at`.
    pub(super) fn unpin(&mut self, at: u16) {
        if let Some(entry) = self.entries.get_mut(usize::from(at)) {
            debug_assert!(entry.pins > 0);
            entry.pins = entry.pins.saturating_sub(1);
        }
    }

    /// Starts recording an object whose first key, `s[from..to]`, is plain;
    /// `None` when there is no room.
    #[inline(always)]
    pub(super) fn record(&mut self, s: &[u8], from: usize, to: usize) -> Option<Shape> {
        let bytes = u16::try_from(self.recorded.len()).ok()?;
        let keys = u16::try_from(self.recorded_lens.len()).ok()?;
        self.record_key(s, from, to)
            .then_some(Shape::Record(bytes, keys))
    }

    /// Adds `s[from..to]`, the next plain key of the innermost object being
    /// recorded; false (and nothing recorded) when the recording stack is
    /// full. Whether the object's shape fits in a slot is checked when it
    /// closes.
    #[inline(always)]
    pub(super) fn record_key(&mut self, s: &[u8], from: usize, to: usize) -> bool {
        let at = self.recorded.len();
        let len = to - from;
        if at + len > RECORD_BYTES || self.recorded_lens.len() >= RECORD_KEYS {
            return false;
        }
        if len <= 16 && from + 16 <= s.len() {
            // One 16-byte copy rather than a call.
            self.recorded.extend_from_slice(block(s, from));
            self.recorded.truncate(at + len);
        } else {
            self.recorded.extend_from_slice(&s[from..to]);
        }
        self.recorded_lens.push(len as u16);
        true
    }

    /// Drops the recording from `marks` (the innermost one).
    pub(super) fn discard(&mut self, marks: Shape) {
        if let Shape::Record(bytes, keys) = marks {
            self.recorded.truncate(usize::from(bytes));
            self.recorded_lens.truncate(usize::from(keys));
        }
    }

    /// The object recorded from `marks` closed, its keys having `hashes`:
    /// its shape takes an empty slot of its set, or the place of a shape
    /// there that is neither followed now nor of recent use (and the others
    /// lose credit).
    pub(super) fn keep(&mut self, marks: Shape, hashes: &[u64]) {
        let Shape::Record(bytes, keys) = marks else {
            return;
        };
        let (bytes, keys) = (usize::from(bytes), usize::from(keys));
        let lens = self.recorded_lens.get(keys..).unwrap_or_default();
        let raw = self.recorded.get(bytes..).unwrap_or_default();
        if !lens.is_empty()
            && lens.len() == hashes.len()
            && lens.len() <= MAX_KEYS
            && raw.len() <= MAX_BYTES
        {
            if self.entries.is_empty() {
                self.entries = vec![Entry::EMPTY; SLOTS];
            }
            let first = &raw[..usize::from(lens[0]).min(raw.len())];
            let set = set_of(first);
            let ways = &mut self.entries[set..set + WAYS];
            let place = match ways.iter().position(|e| e.len == 0) {
                Some(empty) => Some(empty),
                None => ways.iter().position(|e| e.pins == 0 && e.credit == 0),
            };
            if place.is_none() {
                for entry in ways.iter_mut() {
                    entry.credit = entry.credit.saturating_sub(1);
                }
            }
            if let Some(entry) = place.map(|way| &mut ways[way]) {
                entry.credit = 0;
                entry.bytes[..raw.len()].copy_from_slice(raw);
                let mut end = 0u16;
                for (k, &len) in lens.iter().enumerate() {
                    end += len;
                    entry.ends[k] = end;
                }
                entry.hashes[..hashes.len()].copy_from_slice(hashes);
                entry.len = lens.len();
            }
        }
        self.recorded.truncate(bytes);
        self.recorded_lens.truncate(keys);
    }

    /// Forgets every shape and recording (a new body: nothing learnt from
    /// one body is used on the next), keeping the memory.
    pub(super) fn clear(&mut self) {
        for entry in &mut self.entries {
            entry.len = 0;
            entry.pins = 0;
            entry.credit = 0;
        }
        self.recorded.clear();
        self.recorded_lens.clear();
    }

    /// Heap bytes held.
    pub(super) fn footprint(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.recorded.capacity()
            + 2 * self.recorded_lens.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records an object with `keys` and closes it; false when the
    /// recording stack ran out.
    fn record(shapes: &mut Shapes, keys: &[&str]) -> bool {
        let Some(marks) = shapes.record(&chunk(keys[0]), 0, keys[0].len()) else {
            return false;
        };
        for k in &keys[1..] {
            if !shapes.record_key(&chunk(k), 0, k.len()) {
                shapes.discard(marks);
                return false;
            }
        }
        let hashes: Vec<u64> = (0..keys.len() as u64).map(|h| h + 100).collect();
        shapes.keep(marks, &hashes);
        true
    }

    fn follow(shapes: &mut Shapes, key: &str) -> Option<u16> {
        shapes.follow(&chunk(key), 0, key.len())
    }

    /// `"key"` padded with bytes that are not a quote, as a chunk.
    fn chunk(key: &str) -> Vec<u8> {
        let mut s = key.as_bytes().to_vec();
        s.extend_from_slice(b"\": 1, xxxxxxxxxxxxxxxxxxxxxxxx");
        s
    }

    #[test]
    fn a_recorded_shape_matches_its_keys_in_order_and_nothing_else() {
        let mut shapes = Shapes::default();
        let long = "a_key_longer_than_sixteen_bytes";
        assert!(record(&mut shapes, &["id", "name", long, ""]));
        let at = follow(&mut shapes, "id").unwrap();
        for (k, key) in ["id", "name", long, ""].iter().enumerate() {
            let s = chunk(key);
            assert_eq!(shapes.matches(at, k as u64, &s, 0), Some(key.len() + 1));
            // Near the end of the chunk, where the 16-byte compare is not
            // possible, the answer is the same.
            let tight = &s[..key.len() + 1];
            assert_eq!(shapes.matches(at, k as u64, tight, 0), Some(key.len() + 1));
            // One byte short, one byte longer, one byte different.
            assert_eq!(shapes.matches(at, k as u64, &s[..key.len()], 0), None);
            let longer = chunk(&format!("{key}x"));
            assert_eq!(shapes.matches(at, k as u64, &longer, 0), None);
            if !key.is_empty() {
                let mut other = s.clone();
                other[key.len() - 1] ^= 1;
                assert_eq!(shapes.matches(at, k as u64, &other, 0), None);
            }
        }
        assert_eq!(shapes.matches(at, 4, &chunk("id"), 0), None);
        assert_eq!(shapes.hashes(at, 2), &[100, 101]);
        assert_eq!(follow(&mut shapes, "name"), None);
        assert_eq!(follow(&mut shapes, "i"), None);
    }

    /// First keys that pick the same set, `WAYS + 1` of them.
    fn same_set() -> Vec<String> {
        let want = set_of(b"k0");
        let keys: Vec<String> = (0..10_000)
            .map(|n| format!("k{n}"))
            .filter(|k| set_of(k.as_bytes()) == want)
            .take(WAYS + 1)
            .collect();
        assert_eq!(keys.len(), WAYS + 1);
        keys
    }

    #[test]
    fn a_followed_shape_is_never_replaced_and_a_used_one_only_when_it_stops_being_of_use() {
        let firsts = same_set();
        let mut shapes = Shapes::default();
        assert!(record(&mut shapes, &[&firsts[0], "a"]));
        let at = follow(&mut shapes, &firsts[0]).unwrap();
        // The set's other ways fill up; then no amount of new shapes
        // displaces the followed one.
        for _ in 0..10 {
            for first in &firsts[1..] {
                assert!(record(&mut shapes, &[first, "b"]));
            }
        }
        assert_eq!(shapes.matches(at, 1, &chunk("a"), 0), Some(2));
        shapes.unpin(at);
        // Both ways in use, with full credit: a new shape must be refused
        // MAX_CREDIT times before it takes the place of the first one.
        let newcomer = &firsts[1];
        for first in [&firsts[0], &firsts[WAYS]] {
            for _ in 0..MAX_CREDIT {
                let at = follow(&mut shapes, first).unwrap();
                shapes.unpin(at);
            }
        }
        for _ in 0..MAX_CREDIT {
            assert!(record(&mut shapes, &[newcomer, "c"]));
            assert_eq!(follow(&mut shapes, newcomer), None);
        }
        assert!(record(&mut shapes, &[newcomer, "c"]));
        let at = follow(&mut shapes, newcomer).unwrap();
        assert_eq!(shapes.matches(at, 1, &chunk("c"), 0), Some(2));
        assert_eq!(follow(&mut shapes, &firsts[0]), None);
        assert!(follow(&mut shapes, &firsts[WAYS]).is_some());
    }

    #[test]
    fn a_shape_an_object_follows_stays_while_nested_objects_evict_others() {
        use crate::inspector::{Inspector, JsonOptions, Limits};
        use crate::violation::ViolationKind;
        let [k0, g0, g1] = <[String; 3]>::try_from(same_set()).unwrap();
        // The outer object follows the shape of the first one ([k0, a, b]).
        // Its nested objects, whose first keys share the set, fill the other
        // way, lower every credit and replace a shape; if the followed one
        // were replaced by [g1, x, a], the second "a" would match it.
        let nested = |g: &str| format!(r#"{{"{g}":1,"x":1,"a":1}}"#);
        let body = format!(
            r#"[{{"{k0}":1,"a":1,"b":1}},{{"{k0}":1,"a":[{},{},{},{}],"a":1}}]"#,
            nested(&g0),
            nested(&g0),
            nested(&g1),
            nested(&g1)
        );
        let second_a = body.rfind(r#""a""#).unwrap() as u64;
        let verdict =
            Inspector::check(&Limits::default(), &JsonOptions::default(), body.as_bytes());
        let v = verdict.unwrap_err();
        assert_eq!(
            (v.kind, v.offset),
            (ViolationKind::DuplicateKey, Some(second_a))
        );
    }

    #[test]
    fn shapes_and_recordings_are_bounded() {
        let mut shapes = Shapes::default();
        let many: Vec<String> = (0..=MAX_KEYS).map(|k| format!("k{k}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(record(&mut shapes, &many[..MAX_KEYS]));
        assert!(follow(&mut shapes, "k0").is_some());
        shapes.clear();
        // Recorded, but with one key too many to be kept.
        assert!(record(&mut shapes, &many));
        assert_eq!(follow(&mut shapes, "k0"), None);
        let big = "x".repeat(MAX_BYTES / 2);
        let big2 = "y".repeat(MAX_BYTES / 2);
        assert!(record(&mut shapes, &[&big, &big2]));
        assert!(follow(&mut shapes, &big).is_some());
        shapes.clear();
        assert!(record(&mut shapes, &[&big, &big2, "z"]));
        assert_eq!(follow(&mut shapes, &big), None);
        // The recording stack holds RECORD_KEYS keys and RECORD_BYTES bytes
        // over all the objects being recorded.
        let marks = shapes.record(&chunk("a"), 0, 1).unwrap();
        for _ in 1..RECORD_KEYS {
            assert!(shapes.record_key(&chunk("b"), 0, 1));
        }
        assert!(!shapes.record_key(&chunk("b"), 0, 1));
        shapes.discard(marks);
        let long = "l".repeat(RECORD_BYTES / 4);
        let marks = shapes.record(&chunk(&long), 0, long.len()).unwrap();
        for _ in 1..4 {
            assert!(shapes.record_key(&chunk(&long), 0, long.len()));
        }
        assert!(!shapes.record_key(&chunk("b"), 0, 1));
        shapes.discard(marks);
        assert!(shapes.recorded.is_empty() && shapes.recorded_lens.is_empty());
    }
}
