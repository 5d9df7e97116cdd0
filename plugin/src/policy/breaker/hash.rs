//! FNV-1a 64: a few lines instead of a dependency. Used to spread scope keys
//! over slots and to name things (namespaces, header digests) without
//! carrying their content. Not a cryptographic hash, and not meant to be.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An incremental FNV-1a 64 hasher (deterministic across runs, platforms and
/// VMs, which `std`'s randomly keyed hashers are not — every worker must map
/// a key to the same slot).
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self(OFFSET_BASIS)
    }
}

impl Fnv1a64 {
    /// Mixes `bytes` into the hash.
    pub fn write(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        self
    }

    /// Mixes a length-prefixed field, so that field boundaries are part of
    /// the hash (`("ab", "c")` and `("a", "bc")` differ).
    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.write(&(bytes.len() as u64).to_le_bytes()).write(bytes)
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// FNV-1a 64 of one byte string.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    Fnv1a64::default().write(bytes).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fields_keep_their_boundaries() {
        let ab_c = Fnv1a64::default().field(b"ab").field(b"c").finish();
        let a_bc = Fnv1a64::default().field(b"a").field(b"bc").finish();
        assert_ne!(ab_c, a_bc);
    }
}
