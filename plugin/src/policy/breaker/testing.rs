//! Test doubles: an in-memory shared-data map that behaves like Envoy's
//! (process-wide CAS counter, non-zero CAS on a missing key succeeds, CAS 0
//! unconditional, no delete), with knobs to inject CAS mismatches, host
//! errors and garbage, and hostcall counters. One double serves the breaker's
//! unit tests, the filter's session tests and the `filter` fuzz target, so
//! all three exercise the same host semantics.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::store::{SetError, Store, StoreError};

/// Envoy's shared data for one VM, single-threaded; the knobs make it a
/// hostile or failing host on demand.
#[derive(Default)]
pub struct EnvoyStore {
    map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    last_cas: Cell<u32>,
    /// `get` calls so far, to assert how many hostcalls a path makes.
    pub gets: Cell<u32>,
    /// `set` calls so far.
    pub sets: Cell<u32>,
    /// The next N sets fail with CasMismatch without writing.
    pub inject_mismatches: Cell<u32>,
    /// Every set fails with CasMismatch.
    pub always_mismatch: Cell<bool>,
    /// Gets fail with a host error.
    pub fail_gets: Cell<bool>,
    /// Sets fail with a host error.
    pub fail_sets: Cell<bool>,
    /// Every get answers bytes no plugin wrote (the key reversed, CAS 3), as
    /// a hostile host or another plugin sharing the key space might.
    pub garbage_gets: Cell<bool>,
}

impl EnvoyStore {
    /// An empty store whose first write gets CAS 1, as in Envoy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the CAS counter elsewhere (e.g. next to `CREATE_CAS`).
    pub fn with_cas_counter(last: u32) -> Self {
        let s = Self::default();
        s.last_cas.set(last);
        s
    }

    fn next_cas(&self) -> u32 {
        let mut c = self.last_cas.get().wrapping_add(1);
        if c == 0 {
            c = 1;
        }
        self.last_cas.set(c);
        c
    }

    /// Writes directly (another plugin, garbage, an old version).
    pub fn put_raw(&self, key: &str, value: &[u8]) {
        let cas = self.next_cas();
        self.map
            .borrow_mut()
            .insert(key.to_string(), (value.to_vec(), cas));
    }

    /// The stored bytes under `key`, bypassing the counters and knobs.
    pub fn raw(&self, key: &str) -> Option<Vec<u8>> {
        self.map.borrow().get(key).map(|(v, _)| v.clone())
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.map.borrow().is_empty()
    }

    /// `(gets, sets)` so far.
    pub fn calls(&self) -> (u32, u32) {
        (self.gets.get(), self.sets.get())
    }

    /// Zeroes the call counters.
    pub fn reset_calls(&self) {
        self.gets.set(0);
        self.sets.set(0);
    }
}

impl Store for EnvoyStore {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
        self.gets.set(self.gets.get() + 1);
        if self.fail_gets.get() {
            return Err(StoreError::new("InternalFailure"));
        }
        if self.garbage_gets.get() {
            return Ok((Some(key.bytes().rev().collect()), Some(3)));
        }
        Ok(match self.map.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        self.sets.set(self.sets.get() + 1);
        if self.fail_sets.get() {
            return Err(SetError::Host(StoreError::new("InternalFailure")));
        }
        if self.always_mismatch.get() {
            return Err(SetError::CasMismatch);
        }
        if self.inject_mismatches.get() > 0 {
            self.inject_mismatches.set(self.inject_mismatches.get() - 1);
            return Err(SetError::CasMismatch);
        }
        let cas = cas.unwrap_or(0);
        let current = self.map.borrow().get(key).map(|(_, c)| *c);
        if let Some(current) = current {
            if cas != 0 && cas != current {
                return Err(SetError::CasMismatch);
            }
        }
        let new_cas = self.next_cas();
        self.map
            .borrow_mut()
            .insert(key.to_string(), (value.to_vec(), new_cas));
        Ok(())
    }
}
