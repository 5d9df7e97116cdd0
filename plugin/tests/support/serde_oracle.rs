//! serde_json as the oracle for whole documents, shared by the property
//! tests (`plugin/tests/inspector_properties.rs`) and the fuzz target
//! (`plugin/fuzz/fuzz_targets/inspector.rs`).
//!
//! The grammar is `serde_json::from_slice::<IgnoredAny>`. Where serde_json
//! differs from the inspector *by design*, a stricter serde_json parse
//! covers the difference, each named here rather than skipped:
//! - IgnoredAny does not validate UTF-8 or `\u` surrogate pairing inside
//!   strings; parsing into `serde_json::Value` does, so it is part of the
//!   oracle. Value also refuses numbers beyond f64 range, which the
//!   inspector accepts on purpose (it checks grammar, not magnitude).
//! - serde_json accepts duplicate keys (last wins); the inspector refuses
//!   them, so the oracle adds [`NoDuplicates`], a serde visitor that fails
//!   on a repeated (decoded) key in any one object, each key read up to its
//!   first NUL as C parsers read it (`"a\u0000b"` is `"a"`).
//! - serde_json stops at 128 levels of nesting; depth limits are tested at
//!   their boundary elsewhere.

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// What serde_json's three parses say of one complete document.
#[derive(Debug)]
pub struct SerdeVerdict {
    /// `IgnoredAny` accepts it: the grammar.
    pub grammar_ok: bool,
    /// `Value`'s error, if any: string decoding (UTF-8, surrogates).
    pub decoding: Option<String>,
    /// No object repeats a decoded key.
    pub unique_keys: bool,
}

impl SerdeVerdict {
    /// serde_json's verdict on `doc`, or `None` where serde_json cannot give
    /// one that applies (a number beyond f64, nesting past its limit).
    pub fn of(doc: &[u8]) -> Option<Self> {
        let decoding = serde_json::from_slice::<serde_json::Value>(doc)
            .err()
            .map(|e| e.to_string());
        if decoding.as_deref().is_some_and(|e| {
            e.starts_with("number out of range") || e.starts_with("recursion limit exceeded")
        }) {
            return None;
        }
        Some(Self {
            grammar_ok: serde_json::from_slice::<IgnoredAny>(doc).is_ok(),
            decoding,
            unique_keys: serde_json::from_slice::<NoDuplicates>(doc).is_ok(),
        })
    }

    /// Whether the inspector, with no limits and default options, must
    /// accept the document.
    pub fn accepts(&self) -> bool {
        self.grammar_ok && self.decoding.is_none() && self.unique_keys
    }
}

/// Fails on a key repeated within one object, after serde's decoding.
pub type NoDuplicates = UniqueKeys<false>;

/// Fails on two keys of one object that Go's `encoding/json` matches to the
/// same struct field: equal after [`go_fold`].
#[allow(dead_code)] // The fuzz target shares this file and does not fold.
pub type NoFoldedDuplicates = UniqueKeys<true>;

/// Go's folding of a key, from Go's own fold sets: each character of a
/// set (`go_fold_classes.txt`, written by Go 1.19's `unicode.SimpleFold`)
/// becomes the set's first, ASCII letters lower case, the rest stays; and,
/// as `reject_case_insensitive` documents beyond Go, dotless ı and dotted
/// İ become `i` too (Java matches them so).
#[allow(dead_code)] // As for `NoFoldedDuplicates`.
pub fn go_fold(key: &str) -> String {
    static FIRST_OF_SET: std::sync::OnceLock<std::collections::HashMap<char, char>> =
        std::sync::OnceLock::new();
    let first_of_set = FIRST_OF_SET.get_or_init(|| {
        let code_point = |hex: &str| char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap();
        include_str!("../../src/inspector/go_fold_classes.txt")
            .lines()
            .filter(|line| !line.starts_with('#'))
            .flat_map(|line| {
                let first = code_point(line.split(' ').next().unwrap());
                line.split(' ').map(move |hex| (code_point(hex), first))
            })
            .collect()
    });
    key.chars()
        .map(|c| match c {
            '\u{131}' | '\u{130}' => 'i',
            c => c.to_ascii_lowercase(),
        })
        .map(|c| first_of_set.get(&c).copied().unwrap_or(c))
        .collect()
}

/// Fails on a repeated key in any one object, keys compared as they are
/// or, with `FOLD`, after [`go_fold`].
pub struct UniqueKeys<const FOLD: bool>;

impl<'de, const FOLD: bool> Deserialize<'de> for UniqueKeys<FOLD> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor::<FOLD>)
    }
}

struct UniqueKeysVisitor<const FOLD: bool>;

impl<'de, const FOLD: bool> Visitor<'de> for UniqueKeysVisitor<FOLD> {
    type Value = UniqueKeys<FOLD>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(UniqueKeys)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<UniqueKeys<FOLD>>()?.is_some() {}
        Ok(UniqueKeys)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let key = key.split('\0').next().unwrap_or_default().to_string();
            let key = if FOLD { go_fold(&key) } else { key };
            if !seen.insert(key) {
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value::<UniqueKeys<FOLD>>()?;
        }
        Ok(UniqueKeys)
    }
}
