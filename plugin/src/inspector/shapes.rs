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
//! - An object is recorded straight into a slot it claims when its first
//!   key is read; the slot is pinned and holds no shape (nothing can follow
//!   it) until the object closes and the shape is complete.
//!
//! Leads (native builds only, see [`LEADS`]): the first object to follow a
//! shape also keeps, for each of its members, the raw bytes from the end of
//! the value before it to its colon (`,\n    "id":`). Later objects take a
//! member whose bytes there are the same with one compare, then read its
//! value: the same bytes are the same comma, whitespace, key and colon, so
//! the member is exactly the shape's key `k`, as above. A lead that differs
//! (the same shape at another indentation) ends the use of leads for that
//! object; its keys still follow the shape one by one.
//!
//! Memory is fixed: [`SLOTS`] shapes of at most [`MAX_KEYS`] keys and
//! [`MAX_BYTES`] key and lead bytes; a bigger object is simply not
//! recorded, and a lead that does not fit is not kept.

use super::simd::{block, equal16};

/// Shapes kept: sets chosen by the first key (the top bits of a product,
/// so a power of two), of [`WAYS`] shapes each.
const SETS: usize = 8;
const _: () = assert!(SETS.is_power_of_two() && SETS > 1);
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
/// Whether followed objects use their shape's leads. Natively they take
/// 3.5% of the instructions off twitter.json, 7% off citm_catalog.json and
/// 15% off 64 KiB API bodies. In wasm they cost more than they save:
/// Cranelift keeps the extra state of the object loop on the stack, which
/// slows every member (+5% per 1 KiB request even with no lead ever used),
/// so there they are compiled out.
pub(super) const LEADS: bool = !cfg!(target_arch = "wasm32");
/// Key and lead bytes in one shape.
const MAX_BYTES: usize = if LEADS { 1024 } else { 768 };
/// The longest lead kept: four 16-byte compares.
const MAX_LEAD: usize = 64;
/// The lead span of a key whose lead is not kept (too long, or no room).
const NO_LEAD: [u16; 2] = [u16::MAX, u16::MAX];
/// Keys that may have a lead: none where leads are compiled out.
const LEAD_SLOTS: usize = if LEADS { MAX_KEYS } else { 0 };
/// Bytes after the last one a shape can use, so that the compares in
/// [`same`] may read 16 bytes (64 for leads) from any start.
const SPARE: usize = if LEADS { MAX_LEAD } else { 16 };

/// What an open object is doing with shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Neither: its keys go through the duplicate table.
    None,
    /// Its keys so far are the first keys of the shape in this slot, and
    /// are not in the duplicate table.
    Follow(u16),
    /// Its keys so far are plain and in the duplicate table, and are being
    /// written to the shape in this slot.
    Record(u16),
}

/// One recorded key list.
#[derive(Clone)]
pub(super) struct Entry {
    /// The keys (or leads, which hold them) end to end, then [`SPARE`]
    /// bytes so that the compares never read outside the array.
    bytes: [u8; MAX_BYTES + SPARE],
    /// Where each key starts and ends in `bytes`.
    keys: [[u16; 2]; MAX_KEYS],
    /// Each key's hash, as the duplicate table takes it.
    hashes: [u64; MAX_KEYS],
    /// Where each key's *lead* starts and ends in `bytes`; empty when it was
    /// not recorded. The lead of key `k > 0` is everything from the end of
    /// the value before it to its colon (`,\n    "id":`), so that a member
    /// of a following object is found with one compare instead of four
    /// steps (whitespace, comma, key, colon).
    leads: [[u16; 2]; LEAD_SLOTS],
    /// Keys held; 0 is an empty slot (or one being recorded).
    len: usize,
    /// Keys written so far by the object being recorded here.
    filling: usize,
    /// Bytes of `bytes` written so far by the object being recorded here.
    used: usize,
    /// Open objects following this shape, or 1 while one is recorded here.
    pins: u32,
    /// Raised when an object follows it, lowered when a new shape wants
    /// its place; it is replaced only at zero.
    credit: u8,
}

impl Entry {
    const EMPTY: Entry = Entry {
        bytes: [0; MAX_BYTES + SPARE],
        keys: [[0; 2]; MAX_KEYS],
        leads: [[0; 2]; LEAD_SLOTS],
        hashes: [0; MAX_KEYS],
        len: 0,
        filling: 0,
        used: 0,
        pins: 0,
        credit: 0,
    };

    /// The bounds of key `k`, or of its lead, in `bytes`.
    #[inline(always)]
    fn span(&self, spans: &[[u16; 2]], k: u64) -> Option<(usize, usize)> {
        let k = usize::try_from(k).ok()?;
        if k >= self.len {
            return None;
        }
        let [start, end] = *spans.get(k)?;
        Some((usize::from(start), usize::from(end)))
    }

    /// Key `k` is at `s[from..]`, followed by its closing quote: the index
    /// after the quote.
    #[inline(always)]
    pub(super) fn key_end(&self, k: u64, s: &[u8], from: usize) -> Option<usize> {
        let (start, end) = self.span(&self.keys, k)?;
        let len = end - start;
        let quote = from + len;
        if s.get(quote) != Some(&b'"') || !same::<false>(s, from, &self.bytes, start, len) {
            return None;
        }
        Some(quote + 1)
    }

    /// The lead of key `k` (comma, whitespace, key, colon) is at
    /// `s[from..]`, just after the value before it: the index after the
    /// colon. Otherwise whether the key has a lead, one that differs.
    #[inline(always)]
    pub(super) fn lead(&self, k: u64, s: &[u8], from: usize) -> Result<usize, bool> {
        let (start, end) = self.span(&self.leads, k).ok_or(false)?;
        let len = end - start;
        if len == 0 {
            // None yet, or none kept (which stops the object's leads).
            return Err(start != 0);
        }
        if same::<true>(s, from, &self.bytes, start, len) {
            Ok(from + len)
        } else {
            Err(true)
        }
    }

    /// The hashes of the first `n` keys, which an object that stops
    /// following the shape must put in the duplicate table.
    pub(super) fn hashes(&self, n: u64) -> &[u64] {
        let n = usize::try_from(n).unwrap_or(usize::MAX).min(self.len);
        &self.hashes[..n]
    }

    /// Keys held.
    #[inline(always)]
    pub(super) fn len(&self) -> u64 {
        self.len as u64
    }

    /// Starts an empty recording.
    fn restart(&mut self) {
        self.len = 0;
        self.filling = 0;
        self.used = 0;
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

/// The shapes.
#[derive(Debug, Clone, Default)]
pub(super) struct Shapes {
    /// Empty until the first recording, then [`SLOTS`] entries.
    entries: Vec<Entry>,
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
    let set = (w.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SETS.ilog2())) as usize;
    set * WAYS
}

/// Whether `s[from..from + len]` is `recorded[start..start + len]` (which
/// has [`SPARE`] bytes after it): one 16-byte compare for most keys, two
/// for longer ones, and when `WIDE` four for leads, which hold indentation.
#[inline(always)]
fn same<const WIDE: bool>(
    s: &[u8],
    from: usize,
    recorded: &[u8; MAX_BYTES + SPARE],
    start: usize,
    len: usize,
) -> bool {
    if len <= 16 && from + 16 <= s.len() {
        let want = (1u32 << len) - 1;
        equal16(block(s, from), block(recorded, start)) & want == want
    } else if len <= 32 && from + 32 <= s.len() {
        let want = u32::MAX >> (32 - len);
        let low = equal16(block(s, from), block(recorded, start));
        let high = equal16(block(s, from + 16), block(recorded, start + 16));
        (low | high << 16) & want == want
    } else if WIDE && SPARE >= 64 && len <= 64 && from + 64 <= s.len() {
        let lanes = |k: usize| u64::from(equal16(block(s, from + k), block(recorded, start + k)));
        let want = u64::MAX >> (64 - len);
        (lanes(0) | lanes(16) << 16 | lanes(32) << 32 | lanes(48) << 48) & want == want
    } else {
        recorded
            .get(start..)
            .is_some_and(|recorded| same_bytes(s, from, len, recorded))
    }
}

/// [`same`] for long runs and the end of the chunk: sixteen bytes a step,
/// since a slice compare is a call to a byte loop in wasm, and long keys
/// (twitter.json's `profile_*`) and deeply indented leads are common.
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
            return s.get(from + k..from + len) == recorded.get(k..len);
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
        self.entries.get(usize::from(at))?.key_end(k, s, from)
    }

    /// Shape `at`, to follow its leads.
    #[inline(always)]
    pub(super) fn entry(&self, at: u16) -> Option<&Entry> {
        self.entries.get(usize::from(at))
    }

    /// An object stops following shape `at`.
    pub(super) fn unpin(&mut self, at: u16) {
        if let Some(entry) = self.entries.get_mut(usize::from(at)) {
            debug_assert!(entry.pins > 0);
            entry.pins = entry.pins.saturating_sub(1);
        }
    }

    /// Starts recording an object whose first key is `s[from..to]` (plain,
    /// with `hash`) into a slot of its set: an empty one, or one whose shape
    /// is neither followed now nor of recent use. `None` (and the set's
    /// shapes lose credit) when there is none.
    #[inline(always)]
    pub(super) fn record(&mut self, s: &[u8], from: usize, to: usize, hash: u64) -> Option<Shape> {
        if self.entries.is_empty() {
            self.entries = vec![Entry::EMPTY; SLOTS];
        }
        let set = set_of(s.get(from..to)?);
        let ways = self.entries.get_mut(set..set + WAYS)?;
        let way = match ways.iter().position(|e| e.len == 0 && e.pins == 0) {
            Some(empty) => empty,
            None => match ways.iter().position(|e| e.pins == 0 && e.credit == 0) {
                Some(unused) => unused,
                None => {
                    for entry in ways.iter_mut() {
                        entry.credit = entry.credit.saturating_sub(1);
                    }
                    return None;
                }
            },
        };
        let entry = &mut ways[way];
        entry.restart();
        entry.pins = 1;
        entry.credit = 0;
        let at = (set + way) as u16;
        if self.record_key(at, s, from, to, hash) {
            Some(Shape::Record(at))
        } else {
            self.abandon(at);
            None
        }
    }

    /// Adds `s[from..to]` (plain, with `hash`), the next key of the object
    /// being recorded into slot `at`; false when the shape would be too big.
    #[inline(always)]
    pub(super) fn record_key(
        &mut self,
        at: u16,
        s: &[u8],
        from: usize,
        to: usize,
        hash: u64,
    ) -> bool {
        let Some(entry) = self.entries.get_mut(usize::from(at)) else {
            return false;
        };
        let k = entry.filling;
        let start = entry.used;
        let len = to - from;
        if k >= MAX_KEYS || start + len > MAX_BYTES {
            return false;
        }
        if len <= 16 && from + 16 <= s.len() {
            // One 16-byte copy rather than a call; `bytes` has room.
            let dst: &mut [u8; 16] = (&mut entry.bytes[start..start + 16])
                .try_into()
                .expect("16 bytes");
            *dst = *block(s, from);
        } else {
            entry.bytes[start..start + len].copy_from_slice(&s[from..to]);
        }
        entry.keys[k] = [start as u16, (start + len) as u16];
        if let Some(lead) = entry.leads.get_mut(k) {
            *lead = [0, 0];
        }
        entry.hashes[k] = hash;
        entry.filling = k + 1;
        entry.used = start + len;
        true
    }

    /// Adds `s[from..to]` as the lead of key `k` of shape `at`, which an
    /// object following it has just read (the shape's first follower: a
    /// shape never followed costs nothing more). Nothing happens when the
    /// key has a lead already or there is no room left: the key is still
    /// there, only slower to follow.
    #[inline(never)]
    pub(super) fn add_lead(&mut self, at: u16, k: u64, s: &[u8], from: usize, to: usize) {
        let Some(entry) = self.entries.get_mut(usize::from(at)) else {
            return;
        };
        let Some(k) = usize::try_from(k).ok().filter(|&k| k < entry.len) else {
            return;
        };
        let start = entry.used;
        let len = to.saturating_sub(from);
        let Some(lead) = entry.leads.get_mut(k).filter(|lead| **lead == [0, 0]) else {
            return;
        };
        if start + len > MAX_BYTES || len > MAX_LEAD || to > s.len() {
            *lead = NO_LEAD;
            return;
        }
        *lead = [start as u16, (start + len) as u16];
        entry.used = start + len;
        if from + MAX_LEAD <= s.len() {
            // Four 16-byte copies rather than a call; `bytes` has room.
            for step in (0..MAX_LEAD).step_by(16) {
                let dst: &mut [u8; 16] = (&mut entry.bytes[start + step..start + step + 16])
                    .try_into()
                    .expect("16 bytes");
                *dst = *block(s, from + step);
            }
        } else {
            entry.bytes[start..start + len].copy_from_slice(&s[from..to]);
        }
    }

    /// The object being recorded into slot `at` closed: its shape is
    /// complete and can be followed.
    pub(super) fn publish(&mut self, at: u16) {
        if let Some(entry) = self.entries.get_mut(usize::from(at)) {
            entry.len = entry.filling;
            entry.pins = 0;
        }
    }

    /// The object being recorded into slot `at` will not be: the slot is
    /// left empty.
    pub(super) fn abandon(&mut self, at: u16) {
        if let Some(entry) = self.entries.get_mut(usize::from(at)) {
            entry.restart();
            entry.pins = 0;
        }
    }

    /// Forgets every shape and recording (a new body: nothing learnt from
    /// one body is used on the next), keeping the memory.
    pub(super) fn clear(&mut self) {
        for entry in &mut self.entries {
            entry.restart();
            entry.pins = 0;
            entry.credit = 0;
        }
    }

    /// Heap bytes held.
    pub(super) fn footprint(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records an object with `keys` (whose hashes are 100, 101, ...) and
    /// closes it; false when it found no slot or was too big.
    fn record(shapes: &mut Shapes, keys: &[&str]) -> bool {
        let Some(Shape::Record(at)) = shapes.record(&chunk(keys[0]), 0, keys[0].len(), 100) else {
            return false;
        };
        for (n, k) in keys.iter().enumerate().skip(1) {
            if !shapes.record_key(at, &chunk(k), 0, k.len(), 100 + n as u64) {
                shapes.abandon(at);
                return false;
            }
        }
        shapes.publish(at);
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
        assert_eq!(shapes.entry(at).unwrap().hashes(2), &[100, 101]);
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
        // The set's other way fills up; then no amount of new shapes
        // displaces the followed one.
        assert!(record(&mut shapes, &[&firsts[1], "b"]));
        for _ in 0..10 {
            record(&mut shapes, &[&firsts[WAYS], "b"]);
            record(&mut shapes, &[&firsts[1], "b"]);
        }
        assert_eq!(shapes.matches(at, 1, &chunk("a"), 0), Some(2));
        shapes.unpin(at);
        // Both ways in use, with full credit: a new shape is refused
        // MAX_CREDIT times before it takes the place of one of them.
        for first in [&firsts[0], &firsts[1]] {
            for _ in 0..MAX_CREDIT {
                let at = follow(&mut shapes, first).unwrap();
                shapes.unpin(at);
            }
        }
        let newcomer = &firsts[WAYS];
        for _ in 0..MAX_CREDIT {
            assert!(!record(&mut shapes, &[newcomer, "c"]));
        }
        assert!(record(&mut shapes, &[newcomer, "c"]));
        let at = follow(&mut shapes, newcomer).unwrap();
        assert_eq!(shapes.matches(at, 1, &chunk("c"), 0), Some(2));
        assert_eq!(follow(&mut shapes, &firsts[0]), None);
        assert!(follow(&mut shapes, &firsts[1]).is_some());
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

    /// A lead as a pretty-printer writes it, `indent` spaces deep.
    fn lead_of(key: &str, indent: usize) -> String {
        format!(",\n{}\"{key}\":", " ".repeat(indent))
    }

    #[test]
    fn a_lead_is_kept_once_and_matches_exactly_its_bytes() {
        let mut shapes = Shapes::default();
        let long = "in_reply_to_status_id_str";
        assert!(record(&mut shapes, &["id", "a", long, "b"]));
        let at = follow(&mut shapes, "id").unwrap();
        // No lead yet: not a difference.
        let s = format!("{} 1}}{}", lead_of("a", 2), " ".repeat(80));
        assert_eq!(
            shapes.entry(at).unwrap().lead(1, s.as_bytes(), 0),
            Err(false)
        );
        // Leads of every compare width: 6 bytes, 16, 17, 32, 33 and 64.
        for (k, key, indent) in [
            (1, "a", 0),
            (1, "a", 10),
            (1, "a", 11),
            (2, long, 2),
            (2, long, 3),
            (2, long, 34),
        ] {
            let mut shapes = shapes.clone();
            let lead = lead_of(key, indent);
            let s = format!("{lead} 1}}{}", " ".repeat(80));
            shapes.add_lead(at, k, s.as_bytes(), 0, lead.len());
            let entry = shapes.entry(at).unwrap();
            assert_eq!(entry.lead(k, s.as_bytes(), 0), Ok(lead.len()), "{lead:?}");
            // Where the chunk ends just after it, or cuts it short.
            assert_eq!(
                entry.lead(k, &s.as_bytes()[..lead.len()], 0),
                Ok(lead.len())
            );
            assert_eq!(entry.lead(k, &s.as_bytes()[..lead.len() - 1], 0), Err(true));
            // Any one byte different, or one more space of indentation.
            for at_byte in 0..lead.len() {
                let mut other = s.clone().into_bytes();
                other[at_byte] ^= 0x40;
                assert_eq!(
                    entry.lead(k, &other, 0),
                    Err(true),
                    "byte {at_byte} of {lead:?}"
                );
            }
            let deeper = format!("{} 1}}{}", lead_of(key, indent + 1), " ".repeat(80));
            assert_eq!(entry.lead(k, deeper.as_bytes(), 0), Err(true));
            // The key itself still matches on its own, and the other keys
            // have no lead.
            let key_at = lead.len() - key.len() - 2;
            assert_eq!(entry.key_end(k, s.as_bytes(), key_at), Some(lead.len() - 1));
            assert_eq!(entry.lead(3, s.as_bytes(), 0), Err(false));
            // A second lead for the same key does not replace the first.
            let other = lead_of(key, indent + 2);
            shapes.add_lead(at, k, other.as_bytes(), 0, other.len());
            let entry = shapes.entry(at).unwrap();
            assert_eq!(entry.lead(k, s.as_bytes(), 0), Ok(lead.len()));
        }
        // A lead longer than four compares is not kept, and says so.
        let lead = lead_of(long, 35);
        assert_eq!(lead.len(), MAX_LEAD + 1);
        shapes.add_lead(at, 2, lead.as_bytes(), 0, lead.len());
        assert_eq!(
            shapes.entry(at).unwrap().lead(2, lead.as_bytes(), 0),
            Err(true)
        );
        // Nor one for a key the shape does not have: no byte is taken.
        let used = shapes.entry(at).unwrap().used;
        shapes.add_lead(at, 4, lead_of("c", 0).as_bytes(), 0, 6);
        assert_eq!(shapes.entry(at).unwrap().used, used);
    }

    #[test]
    fn leads_stop_where_the_shape_is_full() {
        let mut shapes = Shapes::default();
        let keys: Vec<String> = (0..MAX_KEYS).map(|k| format!("key_{k:02}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        assert!(record(&mut shapes, &keys));
        let at = follow(&mut shapes, "key_00").unwrap();
        let mut kept = 0;
        for (k, key) in keys.iter().enumerate().skip(1) {
            let lead = lead_of(key, 40);
            let s = format!("{lead}{}", " ".repeat(80));
            shapes.add_lead(at, k as u64, s.as_bytes(), 0, lead.len());
            match shapes.entry(at).unwrap().lead(k as u64, s.as_bytes(), 0) {
                Ok(end) => {
                    assert_eq!(end, lead.len());
                    assert_eq!(kept + 1, k, "no lead is kept after one was refused");
                    kept += 1;
                }
                Err(refused) => assert!(refused, "a refused lead is marked"),
            }
        }
        let entry = shapes.entry(at).unwrap();
        assert!(kept > 0 && kept < MAX_KEYS - 1, "{kept}");
        assert!(entry.used <= MAX_BYTES);
    }

    #[test]
    fn shapes_are_bounded() {
        let mut shapes = Shapes::default();
        let many: Vec<String> = (0..=MAX_KEYS).map(|k| format!("k{k}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(record(&mut shapes, &many[..MAX_KEYS]));
        assert!(follow(&mut shapes, "k0").is_some());
        shapes.clear();
        // One key too many: the slot is left empty.
        assert!(!record(&mut shapes, &many));
        assert_eq!(follow(&mut shapes, "k0"), None);
        let big = "x".repeat(MAX_BYTES / 2);
        let big2 = "y".repeat(MAX_BYTES / 2);
        assert!(record(&mut shapes, &[&big, &big2]));
        assert!(follow(&mut shapes, &big).is_some());
        shapes.clear();
        assert!(!record(&mut shapes, &[&big, &big2, "z"]));
        assert_eq!(follow(&mut shapes, &big), None);
        // A first key too long for any shape claims no slot for good.
        let huge = "h".repeat(MAX_BYTES + 1);
        assert_eq!(shapes.record(&chunk(&huge), 0, huge.len(), 1), None);
        // Nothing stays pinned.
        assert!(shapes.entries.iter().all(|e| e.pins == 0));
    }
}
