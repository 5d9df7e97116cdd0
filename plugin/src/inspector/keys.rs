//! Bounded memory of the keys of every open object, for duplicate detection.
//!
//! Keys are reduced to 64-bit fingerprints (a seeded word-at-a-time hash of
//! the decoded key bytes, finished with fmix64 and mixed with the nesting
//! depth so equal keys in different open objects differ). They live in one
//! open-addressing table shared by all open objects. Objects close in LIFO
//! order, and removing linear-probing entries in exact reverse insertion order
//! restores the table exactly, so closing an object just pops its keys. Memory
//! is proportional to the keys of the objects currently open, which
//! `max_object_entries` x `max_depth` bounds.

/// Multiplier of the per-word mix (2^64 / golden ratio, odd).
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
/// Mixed into the seed so that seed 0 does not start from state 0.
const INIT: u64 = 0x243f_6a88_85a3_08d3;

/// Streaming hash of a key's decoded bytes, eight bytes at a time.
///
/// Word boundaries are counted from the first byte of the *decoded key*, not
/// from the chunk or the raw text, and a partial word is carried over, so the
/// result depends only on the decoded bytes: the same whether the key arrives
/// whole, one byte per chunk, or spelled with escapes. The seed enters first
/// and every word goes through a multiply, so slots cannot be predicted
/// without the seed; [`fingerprint`] adds the final avalanche.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyHasher {
    state: u64,
    /// Bytes of the current partial word, first byte lowest.
    tail: u64,
    /// Decoded bytes so far.
    len: u64,
}

#[inline(always)]
fn mix(state: u64, word: u64) -> u64 {
    let x = (state ^ word).wrapping_mul(MUL);
    x ^ (x >> 29)
}

impl KeyHasher {
    /// An empty key under `seed`.
    #[inline(always)]
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            state: seed ^ INIT,
            tail: 0,
            len: 0,
        }
    }

    /// One decoded byte.
    #[inline(always)]
    pub(crate) fn push(&mut self, b: u8) {
        self.tail |= u64::from(b) << ((self.len & 7) * 8);
        self.len += 1;
        if self.len & 7 == 0 {
            self.state = mix(self.state, self.tail);
            self.tail = 0;
        }
    }

    /// A run of decoded bytes.
    #[inline(always)]
    pub(crate) fn write(&mut self, mut bytes: &[u8]) {
        while self.len & 7 != 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return;
            };
            self.push(b);
            bytes = rest;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            self.state = mix(self.state, u64::from_le_bytes(a));
        }
        self.len += (bytes.len() - words.remainder().len()) as u64;
        for &b in words.remainder() {
            self.push(b);
        }
    }

    /// The hash of the whole key. The length is mixed in (its low byte
    /// fills the top byte that a partial word never uses), so a trailing
    /// U+0000 still makes a different key.
    #[inline(always)]
    pub(crate) fn finish(&self) -> u64 {
        mix(self.state, self.tail | (self.len << 56))
    }
}

/// The same hash as feeding `s[from..to]` to a fresh [`KeyHasher`], for a
/// key that lies whole in one chunk without escapes: whole words, then the
/// last partial word read with one load where the chunk allows it. With
/// `FOLD`, of the key with its ASCII letters lowercased (such a key is all
/// ASCII), as a [`Folder`](super::go_fold::Folder) feeds it.
#[inline(always)]
pub(crate) fn hash_slice<const FOLD: bool>(seed: u64, s: &[u8], from: usize, to: usize) -> u64 {
    let word = |w: u64| if FOLD { ascii_lowercase8(w) } else { w };
    let mut state = seed ^ INIT;
    let mut i = from;
    while i + 8 <= to {
        state = mix(state, word(load8(s, i)));
        i += 8;
    }
    let rest = to - i;
    let tail = if i + 8 <= s.len() {
        // One load, masked to the key's last `rest` (0 to 7) bytes: no
        // branch on the key's length.
        load8(s, i) & ((1u64 << (rest * 8)) - 1)
    } else {
        let mut t = 0;
        for (k, &b) in s[i..to].iter().enumerate() {
            t |= u64::from(b) << (k * 8);
        }
        t
    };
    mix(state, word(tail) | (((to - from) as u64) << 56))
}

/// `w` with every ASCII capital letter lane made lower case (`| 0x20`).
#[inline(always)]
fn ascii_lowercase8(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    // On the low seven bits of each lane no sum carries into the next lane:
    // the high bit says `>= 'A'`, and `> 'Z'`, of bytes below 0x80.
    let low = w & !HIGHS;
    let from_a = low + ONES * (0x80 - u64::from(b'A'));
    let past_z = low + ONES * (0x80 - u64::from(b'Z') - 1);
    let capital = from_a & !past_z & !w & HIGHS;
    w | (capital >> 2)
}

#[inline(always)]
fn load8(s: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(w)
}

/// Final avalanche (MurmurHash3 fmix64) of a key hash mixed with its depth:
/// where a key lands in the table. fmix64 is a bijection, so it never makes
/// two different hashes equal; it spreads them over the slots.
#[inline]
fn fingerprint(hash: u64, depth: usize) -> u64 {
    let mut h = hash ^ (depth as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    // 0 marks an empty slot.
    if h == 0 {
        1
    } else {
        h
    }
}

/// Objects with up to this many keys are checked by a linear scan of their
/// own key hashes; beyond it they move to the hash table. Nearly all objects
/// in API bodies (and in twitter.json, whose user objects have about 40 keys)
/// are this small, and a branch-free, vectorised scan of at most 64 words is
/// cheaper than hashing into and out of a table. The scan bounds the cost of
/// a key at 64 compares; bigger objects (up to `max_object_entries`) cost
/// O(1) per key in the table.
const SMALL: usize = 64;

/// The keys of all open objects.
///
/// `live` holds the hash of every key, innermost object last; an object's keys
/// are `live[mark..]` where `mark` is `live.len()` when it opened. Keys of an
/// object with more than [`SMALL`] keys are also in `slots` (linear probing)
/// as fingerprints,
/// and `tabled` lists the fingerprints in `slots` in insertion order, so that
/// objects leave the table in exact reverse order and the table can be
/// rebuilt when it grows.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeySet {
    slots: Vec<u64>,
    tabled: Vec<u64>,
    live: Vec<u64>,
    /// Per nesting depth, a Bloom filter of the keys of the open object
    /// there while it is small (reset by its first key).
    blooms: Vec<Bloom>,
}

/// The Bloom filter of one small object's keys.
type Bloom = [u64; 4];

impl KeySet {
    /// How many keys are held; an object records it when it opens.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// Adds a key hash to the innermost open object, which opened at `mark`
    /// at nesting `depth`; false when it was already there (a duplicate).
    /// The scan compares raw hashes (equal exactly when their fingerprints
    /// are), so small objects never pay for the avalanche.
    #[inline(always)]
    pub(crate) fn insert(&mut self, hash: u64, depth: usize, mark: usize) -> bool {
        let own = self.live.get(mark..).unwrap_or_default();
        if own.len() <= SMALL {
            // A 256-bit Bloom filter of the object's keys (eight hash bits
            // pick one bit) rules most new keys out without the scan: with
            // 40 keys (a twitter.json user) 86% of new keys skip it.
            if self.blooms.len() <= depth {
                self.blooms.resize(depth + 1, [0; 4]);
            }
            let bloom = &mut self.blooms[depth];
            if own.is_empty() {
                *bloom = [0; 4];
            }
            let bit = (hash >> 56) as usize;
            let (word, mask) = (bit >> 6, 1u64 << (bit & 63));
            if bloom[word] & mask != 0 && own.contains(&hash) {
                return false;
            }
            bloom[word] |= mask;
            if own.len() < SMALL {
                self.live.push(hash);
                return true;
            }
        }
        self.insert_big(hash, depth, mark)
    }

    #[inline(never)]
    fn insert_big(&mut self, hash: u64, depth: usize, mark: usize) -> bool {
        let mut moved = 0;
        if self.live.len() - mark == SMALL {
            // The object outgrows the scan with this new key: its keys
            // (distinct, and none equal to `hash`) move in.
            for k in mark..self.live.len() {
                let fp = fingerprint(self.live[k], depth);
                if !self.table_push(fp) {
                    // Two distinct keys with one fingerprint (a 2^-64
                    // chance): judged a duplicate, as in the table.
                    self.table_pop(moved);
                    return false;
                }
                moved += 1;
            }
        }
        if !self.table_push(fingerprint(hash, depth)) {
            // The move is undone, so that the table holds the keys of
            // objects past `SMALL` only: with `report_only` the scan goes
            // on after a duplicate.
            self.table_pop(moved);
            return false;
        }
        self.live.push(hash);
        true
    }

    /// Adds `fp` to the table; false if it is already there.
    fn table_push(&mut self, fp: u64) -> bool {
        if (self.tabled.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        if !Self::place(&mut self.slots, fp) {
            return false;
        }
        self.tabled.push(fp);
        true
    }

    /// Forgets the keys of the innermost object, which opened at `mark`.
    #[inline(always)]
    pub(crate) fn truncate(&mut self, mark: usize) {
        let n = self.live.len().saturating_sub(mark);
        if n > SMALL {
            self.table_pop(n);
        }
        self.live.truncate(mark);
    }

    /// Removes the last `n` fingerprints put in the table.
    #[inline(never)]
    fn table_pop(&mut self, n: usize) {
        let mask = self.slots.len().wrapping_sub(1);
        for _ in 0..n {
            let Some(fp) = self.tabled.pop() else { break };
            let mut idx = (fp as usize) & mask;
            // Bounded: the table is never full, and `fp` is present.
            for _ in 0..self.slots.len() {
                match self.slots.get_mut(idx) {
                    Some(slot) if *slot == fp => {
                        *slot = 0;
                        break;
                    }
                    Some(_) => idx = (idx + 1) & mask,
                    None => break,
                }
            }
        }
    }

    /// Heap bytes held, whatever is in use.
    pub(crate) fn footprint(&self) -> usize {
        8 * (self.slots.capacity() + self.tabled.capacity() + self.live.capacity())
            + std::mem::size_of::<Bloom>() * self.blooms.capacity()
    }

    /// Forgets everything, keeping the allocation for the next body.
    pub(crate) fn clear(&mut self) {
        self.live.clear();
        if !self.tabled.is_empty() {
            self.tabled.clear();
            self.slots.iter_mut().for_each(|s| *s = 0);
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(64);
        self.slots = vec![0; size];
        for &fp in &self.tabled {
            Self::place(&mut self.slots, fp);
        }
    }

    /// Linear probing insert; false if `fp` is already there.
    fn place(slots: &mut [u64], fp: u64) -> bool {
        let mask = slots.len() - 1;
        let mut idx = (fp as usize) & mask;
        for _ in 0..slots.len() {
            let slot = &mut slots[idx];
            if *slot == 0 {
                *slot = fp;
                return true;
            }
            if *slot == fp {
                return false;
            }
            idx = (idx + 1) & mask;
        }
        // Unreachable while the load factor stays at or below one half.
        true
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A key's hash under seed 7, fed whole.
    pub(in crate::inspector) fn hash(bytes: &[u8]) -> u64 {
        let mut h = KeyHasher::new(7);
        h.write(bytes);
        h.finish()
    }

    #[test]
    fn duplicates_are_found_and_truncate_restores_the_table() {
        // Every size around the switch from scan to table, nested in an
        // object that is itself small or big.
        let small = SMALL as u32;
        for outer_n in [3, small, small + 1, 200] {
            for inner_n in [0, 1, small - 1, small, small + 1, small + 2, 500] {
                let mut set = KeySet::default();
                let outer: Vec<u64> = (0..outer_n).map(|i| hash(&i.to_le_bytes())).collect();
                for &h in &outer {
                    assert!(set.insert(h, 1, 0));
                }
                assert!(!set.insert(outer[0], 1, 0));
                let mark = set.len();
                // The same keys, one level down: not duplicates.
                let inner = |i: u32| hash(&i.to_le_bytes());
                for i in 0..inner_n {
                    assert!(set.insert(inner(i), 2, mark));
                    assert!(
                        !set.insert(inner(i / 2), 2, mark),
                        "{outer_n} {inner_n} {i}"
                    );
                }
                set.truncate(mark);
                assert_eq!(set.len(), outer_n as usize);
                // The inner keys are gone, the outer ones are still there.
                let again = set.len();
                for i in 0..inner_n.min(40) {
                    assert!(set.insert(inner(i), 2, again));
                }
                set.truncate(again);
                for &h in &outer {
                    assert!(!set.insert(h, 1, 0));
                }
                // The table holds exactly the keys of big open objects.
                assert_eq!(
                    set.tabled.len(),
                    if outer_n as usize > SMALL {
                        outer.len()
                    } else {
                        0
                    }
                );
                assert_eq!(
                    set.slots.iter().filter(|&&s| s != 0).count(),
                    set.tabled.len()
                );
            }
        }
    }

    #[test]
    fn depth_separates_equal_keys() {
        let h = hash(b"id");
        assert_ne!(fingerprint(h, 1), fingerprint(h, 2));
    }

    #[test]
    fn hash_depends_on_bytes_not_on_how_they_are_fed() {
        let key: Vec<u8> = (0u8..40).map(|b| b.wrapping_mul(37)).collect();
        for n in 0..=key.len() {
            let whole = hash(&key[..n]);
            for a in 0..=n {
                for b in a..=n {
                    let mut h = KeyHasher::new(7);
                    h.write(&key[..a]);
                    for &x in &key[a..b] {
                        h.push(x);
                    }
                    h.write(&key[b..n]);
                    assert_eq!(h.finish(), whole, "len {n}, pieces at {a},{b}");
                }
            }
        }
    }

    #[test]
    fn hash_slice_is_the_streaming_hash() {
        let chunk: Vec<u8> = (0u8..30).map(|b| b.wrapping_mul(91)).collect();
        for from in 0..=chunk.len() {
            for to in from..=chunk.len() {
                assert_eq!(
                    hash_slice::<false>(7, &chunk, from, to),
                    hash(&chunk[from..to]),
                    "{from}..{to}"
                );
            }
        }
    }

    #[test]
    fn ascii_lowercase8_lowers_capitals_only() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b, b'Z', b, b'@', b, b'[', b, 0xC1]);
            let want = u64::from_le_bytes(
                [b, b'Z', b, b'@', b, b'[', b, 0xC1].map(|x| x.to_ascii_lowercase()),
            );
            assert_eq!(ascii_lowercase8(w), want, "{b:#x}");
        }
    }

    #[test]
    fn length_and_seed_matter() {
        assert_ne!(hash(b"a"), hash(b"a\0"));
        assert_ne!(hash(b""), hash(b"\0"));
        assert_ne!(hash(b"abcdefgh"), hash(b"abcdefgh\0"));
        let mut other = KeyHasher::new(8);
        other.write(b"id");
        assert_ne!(other.finish(), hash(b"id"));
    }
}
