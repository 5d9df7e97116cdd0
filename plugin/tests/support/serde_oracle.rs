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
//!   on a repeated (decoded) key in any one object.
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
pub struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicatesVisitor)
    }
}

struct NoDuplicatesVisitor;

impl<'de> Visitor<'de> for NoDuplicatesVisitor {
    type Value = NoDuplicates;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_str<E>(self, _: &str) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_unit<E>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoDuplicates, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoDuplicates, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }
}
