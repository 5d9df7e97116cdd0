//! Go's matching of object keys to struct fields, for
//! `duplicate_keys: reject_case_insensitive`.
//!
//! Go's `encoding/json` (v1) sets a struct field from a key that equals
//! its name under Unicode simple case folding (`bytes.EqualFold`; since Go
//! 1.21, both folded character by character to the smallest of the
//! character's `unicode.SimpleFold` orbit). So `{"rôle":"user","RÔLE":
//! "admin"}` sets one field twice there, and the last wins, while a
//! case-sensitive parser sees two keys. Hashing keys folded makes such keys
//! one key to the duplicate check.

use super::keys::KeyHasher;

/// The one character that every character of `c`'s case-fold set folds to:
/// two characters fold alike when Go matches them (the test below holds
/// this against Go's own fold sets), and only then but for the four i's.
/// ASCII letters fold to lower case.
pub(crate) fn fold_char(c: char) -> char {
    match c {
        // Go keeps dotless ı and dotted İ apart from `i`, but Java's
        // `String.equalsIgnoreCase` matches both to `i` in any locale, and
        // its `toLowerCase()` under a Turkish locale (which Jackson's
        // `ACCEPT_CASE_INSENSITIVE_PROPERTIES` applies) reads İ as `i` and
        // `I` as ı: one set for all four refuses what any of them merges.
        'ı' | 'İ' => return 'i',
        // Unicode 15.1 folds these pairs together (canonically equivalent
        // Greek letters, and the ſt and st ligatures): Go releases with its
        // tables match them, and a key that spells one both ways is no loss
        // to refuse.
        '\u{1FD3}' => return '\u{390}',
        '\u{1FE3}' => return '\u{3B0}',
        '\u{FB05}' => return '\u{FB06}',
        _ => {}
    }
    // A character's upper case, then that one's lower case, each kept only
    // where it is one character (the standard library gives full mappings;
    // a one-character one is the simple mapping), lands every member of a
    // set on its lower-case letter: `ſ`, `S` and `s` on `s`, `ϑ`, `ϴ`, `Θ`
    // and `θ` on `θ`, `ǅ` and `Ǆ` on `ǆ`. Where the mapping is several
    // characters (`ß` to `SS`, `İ` to `i̇`), Go keeps the character too.
    let upper = single(c.to_uppercase()).unwrap_or(c);
    single(upper.to_lowercase()).unwrap_or(upper)
}

/// The one character a case mapping gives, if it gives one.
fn single(mut mapped: impl Iterator<Item = char>) -> Option<char> {
    let first = mapped.next()?;
    mapped.next().is_none().then_some(first)
}

/// A key's decoded bytes on their way into a [`KeyHasher`], each character
/// folded ([`fold_char`]). Bytes may come one at a time (a character cut by
/// a chunk boundary or spelled with escapes), so the bytes of a multi-byte
/// character wait here until it is whole. Bytes that are no character
/// (only a body refused as malformed holds them) pass as they are.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Folder {
    /// The bytes of a multi-byte character so far.
    pending: [u8; 4],
    len: u8,
    /// Its length in bytes, from its first byte.
    width: u8,
}

impl Folder {
    /// Feeds `bytes`, folded, to `hasher`.
    pub(crate) fn write(&mut self, hasher: &mut KeyHasher, bytes: &[u8]) {
        for &b in bytes {
            self.byte(hasher, b);
        }
    }

    fn byte(&mut self, hasher: &mut KeyHasher, b: u8) {
        if self.len > 0 {
            if b & 0xC0 == 0x80 {
                if let Some(slot) = self.pending.get_mut(usize::from(self.len)) {
                    *slot = b;
                    self.len += 1;
                }
                if self.len >= self.width {
                    self.fold_pending(hasher);
                }
                return;
            }
            self.flush(hasher);
        }
        self.width = match b {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => {
                hasher.push(b.to_ascii_lowercase());
                return;
            }
        };
        self.pending[0] = b;
        self.len = 1;
    }

    /// Hashes the whole character now pending, folded.
    fn fold_pending(&mut self, hasher: &mut KeyHasher) {
        let bytes = self.pending.get(..usize::from(self.len)).unwrap_or(&[]);
        match core::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.chars().next())
        {
            Some(c) => hasher.write(fold_char(c).encode_utf8(&mut [0; 4]).as_bytes()),
            None => hasher.write(bytes),
        }
        self.len = 0;
    }

    /// Hands over a started character that never ended (only a key cut
    /// short, which is malformed anyway, ends with one), as it is.
    pub(crate) fn flush(&mut self, hasher: &mut KeyHasher) {
        hasher.write(self.pending.get(..usize::from(self.len)).unwrap_or(&[]));
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::hash_slice;
    use super::super::keys::tests::hash;
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn folded(pieces: &[&[u8]]) -> u64 {
        let (mut h, mut f) = (KeyHasher::new(7), Folder::default());
        for piece in pieces {
            f.write(&mut h, piece);
        }
        f.flush(&mut h);
        h.finish()
    }

    /// Go's fold sets with more than one member, other than the ASCII
    /// letters' (`A` and `a`), from `go_fold_classes.go` run by Go 1.19
    /// (Unicode 13): one set a line, in hexadecimal.
    fn go_sets() -> BTreeSet<BTreeSet<char>> {
        include_str!("go_fold_classes.txt")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| {
                line.split(' ')
                    .map(|hex| u32::from_str_radix(hex, 16).unwrap())
                    .map(|u| char::from_u32(u).unwrap())
                    .collect()
            })
            .collect()
    }

    /// Every character, grouped by what it folds to: the sets of more than
    /// one member other than the ASCII letters'.
    fn our_sets() -> BTreeSet<BTreeSet<char>> {
        let mut by_fold: BTreeMap<char, BTreeSet<char>> = BTreeMap::new();
        for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
            by_fold.entry(fold_char(c)).or_default().insert(c);
        }
        by_fold
            .into_values()
            .filter(|set| set.len() > 1 && !set.iter().all(char::is_ascii))
            .collect()
    }

    /// Characters that Unicode 14 to 17 gave case pairs, or that
    /// Unicode 15.1 folded together: Go releases with newer tables match
    /// them (the Rust standard library's here are Unicode 17's); Go 1.19
    /// had not heard of them.
    fn newer_than_unicode_13(set: &BTreeSet<char>) -> bool {
        set.iter().all(|&c| {
            matches!(u32::from(c),
                0x0264 | 0x0390 | 0x03B0 | 0x1FD3 | 0x1FE3 | 0xFB05 | 0xFB06
                | 0x019B | 0x1C89 | 0x1C8A
                | 0x2C2F | 0x2C5F
                | 0xA7C0 | 0xA7C1 | 0xA7CB..=0xA7DC
                | 0x10570..=0x105BC
                | 0x10D50..=0x10D85
                | 0x16EA0..=0x16ED3)
        })
    }

    /// The i's: `I`, `i`, dotless ı and dotted İ, which Go keeps in three
    /// sets and Java merges.
    fn the_four_is(set: &BTreeSet<char>) -> bool {
        *set == BTreeSet::from(['I', 'i', 'ı', 'İ'])
    }

    /// Exhaustive, over every character: what folds alike is what Go
    /// matches, no set missing (a pair Go matches that went through would
    /// be a duplicate unseen) and none more except those newer Unicode
    /// added and the four i's.
    #[test]
    fn fold_sets_are_gos() {
        let (go, ours) = (go_sets(), our_sets());
        assert!(go.len() > 1300, "{}", go.len());
        let missing: Vec<_> = go.difference(&ours).collect();
        assert!(
            missing.is_empty(),
            "Go matches these, we do not: {missing:?}"
        );
        let extra: Vec<_> = ours
            .difference(&go)
            .filter(|set| !newer_than_unicode_13(set) && !the_four_is(set))
            .collect();
        assert!(extra.is_empty(), "we match these, Go does not: {extra:?}");
    }

    /// The pairs of the differential hunt that found folding ASCII was not
    /// enough, and the ones Go keeps apart.
    #[test]
    fn keys_fold_as_go_matches_them() {
        for (a, b) in [
            ("rôle", "RÔLE"),
            ("kind", "\u{212A}IND"),
            ("size", "\u{17F}IZE"),
            ("σ", "ς"),
            ("ς", "Σ"),
            ("µ", "Μ"),
            ("å", "\u{212B}"),
            ("ω", "\u{2126}"),
            ("ǆ", "ǅ"),
            ("θ", "ϑ"),
            ("ι", "\u{1FBE}"),
            ("ι", "\u{345}"),
            ("ß", "ẞ"),
            ("straße", "STRAẞE"),
            // Beyond Go: Java merges these.
            ("ıd", "ID"),
            ("İsAdmin", "isAdmin"),
        ] {
            assert_eq!(folded(&[a.as_bytes()]), folded(&[b.as_bytes()]), "{a} {b}");
        }
        for (a, b) in [("ß", "ss"), ("ı", "l"), ("İ", "j"), ("é", "e"), ("ǆ", "dž")] {
            assert_ne!(folded(&[a.as_bytes()]), folded(&[b.as_bytes()]), "{a} {b}");
        }
    }

    /// However a key's bytes are cut, it folds the same.
    #[test]
    fn any_split_folds_the_same() {
        let key = "x\u{212A}yÔ\u{1E9E}\u{10400}z".as_bytes();
        let whole = folded(&[key]);
        assert_eq!(whole, folded(&["xkyôß\u{10428}Z".as_bytes()]));
        for a in 0..=key.len() {
            for b in a..=key.len() {
                assert_eq!(
                    folded(&[&key[..a], &key[a..b], &key[b..]]),
                    whole,
                    "cut at {a} and {b}"
                );
            }
        }
    }

    /// Bytes that are no character are kept as they are, not lost: a
    /// character cut short by the key's end or by another byte, a stray
    /// continuation byte, bytes that never start one.
    #[test]
    fn bytes_that_are_no_character_pass_as_they_are() {
        assert_eq!(folded(&[&[b'a', 0xE2, 0x84]]), hash(&[b'a', 0xE2, 0x84]));
        assert_eq!(folded(&[&[0xC5, b'A']]), hash(&[0xC5, b'a']));
        assert_eq!(folded(&[&[0x80, b'B', 0xFF]]), hash(&[0x80, b'b', 0xFF]));
        assert_eq!(folded(&[&[0xC0, 0xAF]]), hash(&[0xC0, 0xAF]));
        // An encoded surrogate decodes to no character.
        assert_eq!(folded(&[&[0xED, 0xA0, 0x80]]), hash(&[0xED, 0xA0, 0x80]));
    }

    /// The inspector's fast path folds a plain ASCII key in one pass of
    /// whole words; it must hash as the byte-wise fold does.
    #[test]
    fn hash_slice_folded_is_the_folded_streaming_hash() {
        let chunk = b"Content-TYPE_Az@[`{09 ZZaa x-Request-Id";
        for from in 0..=chunk.len() {
            for to in from..=chunk.len() {
                assert_eq!(
                    hash_slice::<true>(7, chunk, from, to),
                    folded(&[&chunk[from..to]]),
                    "{from}..{to}"
                );
            }
        }
    }
}
