//! The storage the breaker lives in: proxy-wasm shared data, behind a trait
//! so the state machine can be tested natively with doubles that misbehave
//! on purpose.

use std::fmt;

/// A host failure other than a CAS mismatch (the host's status, rendered by
/// the glue). Envoy practically never returns one for shared data, which is
/// why the breaker simply skips the update and serves the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    /// What the host said, for the log line.
    pub detail: String,
}

impl StoreError {
    /// Wraps the host's answer.
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shared data: {}", self.detail)
    }
}

/// Why a `set` did not land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    /// Someone wrote the key since our `get`: read again and retry.
    CasMismatch,
    /// Any other host failure: give up on this update.
    Host(StoreError),
}

/// Proxy-wasm shared data, as the breaker needs it. Implemented by the
/// filter over `get_shared_data`/`set_shared_data`; `&self` like those.
///
/// Semantics assumed (Envoy, ABI 0.2.1):
/// - `get` returns `(None, None)` for a key never written, else the value and
///   its CAS token. `cas == None` is read as "the key does not exist".
///   Envoy never hands out a CAS of 0 (0 means "unconditional" on `set`).
/// - `set` with `cas == None`/`Some(0)` writes unconditionally — the breaker
///   never does that. With a non-zero CAS it fails with
///   [`SetError::CasMismatch`] if the key exists with another CAS, and
///   *succeeds* if the key does not exist (see [`CREATE_CAS`] for how the
///   first write is made race-free nonetheless).
/// - There is no delete; keys live as long as the process.
///
/// Mapping from the Rust SDK (0.2.5): `get_shared_data` already answers
/// `Ok((None, None))` for a missing key and `Err(Status::CasMismatch)` from
/// `set_shared_data` maps to [`SetError::CasMismatch`]. Note that the SDK
/// panics on any *other* status; to reach [`StoreError`] instead of a trap,
/// call the raw `proxy_get_shared_data`/`proxy_set_shared_data` imports.
/// An existing key with an empty value may come back as `(None, Some(cas))`:
/// existence is judged by the CAS, not by the value.
pub trait Store {
    /// Reads `key`: `(value, cas)`.
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError>;
    /// Writes `key` if its CAS still is `cas`.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError>;
}

/// The CAS sent when writing a key that a `get` reported missing.
///
/// The first-write race: two workers both read a missing key. A CAS of 0
/// would let the second write overwrite the first (a lost update). Instead
/// both write their *complete* update (fresh state + their outcome) with this
/// non-zero CAS. Envoy serialises sets under a lock: the first one finds the
/// key missing and succeeds (a non-zero CAS on a missing key writes); the
/// key now carries a CAS freshly issued by Envoy's counter, so the second
/// one fails with `CasMismatch`, reads the first one's value and retries
/// with the real CAS. Nothing is lost, and creating a key costs no extra
/// hostcall (no separate "ensure it exists" write).
///
/// The only hole: the second write would wrongly succeed if the key's CAS
/// happened to be exactly this value. Envoy's CAS is a process-wide counter,
/// so that needs the creating write to have drawn `u32::MAX` — one value in
/// 2^32, and only in the instant a key is created (afterwards `get` never
/// reports it missing again, there being no delete). Accepted.
pub const CREATE_CAS: u32 = u32::MAX;

impl<T: Store + ?Sized> Store for &T {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        (**self).set(key, value, cas)
    }
}
