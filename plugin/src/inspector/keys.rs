//! Bounded memory of the keys of every open object, for duplicate detection.
//!
//! Keys are reduced to 64-bit fingerprints (a seeded FNV-1a over the decoded
//! key bytes, mixed with the nesting depth so equal keys in different open
//! objects differ). They live in one open-addressing table shared by all open
//! objects. Objects close in LIFO order, and removing linear-probing entries in
//! exact reverse insertion order restores the table exactly, so closing an
//! object just pops its keys. Memory is proportional to the keys of the objects
//! currently open, which `max_object_entries` x `max_depth` bounds.

/// FNV-1a 64-bit offset basis.
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Folds `bytes` into a running FNV-1a hash. Byte-at-a-time on purpose: the
/// result must not depend on how the key was split across body chunks.
#[inline(always)]
pub(crate) fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Final avalanche (MurmurHash3 fmix64) of a key hash mixed with its depth.
#[inline]
pub(crate) fn fingerprint(hash: u64, depth: usize) -> u64 {
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

/// The fingerprints of the keys of all open objects.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeySet {
    slots: Vec<u64>,
    live: Vec<u64>,
}

impl KeySet {
    /// How many fingerprints are held; an object records it when it opens.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// Adds a fingerprint; false when it was already present (a duplicate).
    pub(crate) fn insert(&mut self, fp: u64) -> bool {
        if (self.live.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        if !Self::place(&mut self.slots, fp) {
            return false;
        }
        self.live.push(fp);
        true
    }

    /// Forgets every fingerprint added since the set held `mark` of them.
    pub(crate) fn truncate(&mut self, mark: usize) {
        let mask = self.slots.len().wrapping_sub(1);
        while self.live.len() > mark {
            let Some(fp) = self.live.pop() else { break };
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

    /// Forgets everything, keeping the allocation for the next body.
    pub(crate) fn clear(&mut self) {
        self.live.clear();
        self.slots.iter_mut().for_each(|s| *s = 0);
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(64);
        self.slots = vec![0; size];
        for &fp in &self.live {
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
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_found_and_truncate_restores_the_table() {
        let mut set = KeySet::default();
        let outer: Vec<u64> = (0..100)
            .map(|i| fingerprint(fnv1a(FNV_OFFSET, &[i]), 1))
            .collect();
        for &fp in &outer {
            assert!(set.insert(fp));
        }
        let mark = set.len();
        for i in 0..500u32 {
            assert!(set.insert(fingerprint(fnv1a(FNV_OFFSET, &i.to_le_bytes()), 2)));
        }
        assert!(!set.insert(fingerprint(fnv1a(FNV_OFFSET, &7u32.to_le_bytes()), 2)));
        set.truncate(mark);
        assert_eq!(set.len(), 100);
        // The inner keys are gone, the outer ones are still there.
        assert!(set.insert(fingerprint(fnv1a(FNV_OFFSET, &7u32.to_le_bytes()), 2)));
        for &fp in &outer {
            assert!(!set.insert(fp));
        }
    }

    #[test]
    fn depth_separates_equal_keys() {
        let h = fnv1a(FNV_OFFSET, b"id");
        assert_ne!(fingerprint(h, 1), fingerprint(h, 2));
        assert_eq!(fnv1a(fnv1a(FNV_OFFSET, b"i"), b"d"), h);
    }
}
