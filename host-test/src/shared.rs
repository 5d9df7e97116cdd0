//! State shared by every worker VM of one host environment: the shared-data
//! map and the metrics registry.
//!
//! Envoy keeps one shared-data map per `vm_id` for the whole process and one
//! stats store, whatever thread a VM runs on; breaker correctness depends on
//! exactly those CAS rules, so they are reproduced here and unit-tested.
//! Plugins with different `vm_id`s see different maps, even when they share
//! one [`SharedData`]; the CAS tokens come from one counter, as in
//! proxy-wasm-cpp-host.

use crate::abi::{MetricKind, Status};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not poison the store for the others.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process-wide shared-data maps, one per `vm_id` (clones share them).
///
/// Rules (Envoy's): `get` returns `(value, cas)`; `set` with `cas = 0` writes
/// unconditionally; a non-zero `cas` on a missing key succeeds; a non-zero
/// `cas` that differs from the stored one fails with `CasMismatch`; there is
/// no delete. CAS tokens come from one counter that starts at 1 and skips 0.
#[derive(Clone, Default, Debug)]
pub struct SharedData {
    inner: Arc<Mutex<SharedInner>>,
}

#[derive(Default, Debug)]
struct SharedInner {
    /// Keyed by `vm_id`, then by key.
    maps: HashMap<String, HashMap<String, (Vec<u8>, u32)>>,
    last_cas: u32,
    /// Conditional sets still to lose a race (see [`SharedData::race_next_sets`]).
    races: u32,
}

impl SharedData {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored value and its CAS token, in the map of the empty `vm_id`
    /// (Istio's).
    pub fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.get_in("", key)
    }

    /// The stored value and its CAS token in the map of `vm_id`.
    pub fn get_in(&self, vm_id: &str, key: &str) -> Option<(Vec<u8>, u32)> {
        lock(&self.inner).maps.get(vm_id)?.get(key).cloned()
    }

    /// Stores `value` in the map of the empty `vm_id`; see [`Self::set_in`].
    pub fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
        self.set_in("", key, value, cas)
    }

    /// Stores `value` in the map of `vm_id` under the ABI's CAS rules;
    /// `Err(CasMismatch)` when a non-zero `cas` no longer matches the stored
    /// token.
    pub fn set_in(&self, vm_id: &str, key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
        let mut g = lock(&self.inner);
        if cas != 0 {
            let exists = g.maps.get(vm_id).is_some_and(|m| m.contains_key(key));
            if exists && g.races > 0 {
                // Another worker wrote the key since this one read it.
                g.races -= 1;
                let token = g.next_cas();
                if let Some(entry) = g.maps.get_mut(vm_id).and_then(|m| m.get_mut(key)) {
                    entry.1 = token;
                }
            }
            let stored = g.maps.get(vm_id).and_then(|m| m.get(key));
            if stored.is_some_and(|(_, stored)| *stored != cas) {
                return Err(Status::CasMismatch);
            }
        }
        let token = g.next_cas();
        g.maps
            .entry(vm_id.to_string())
            .or_default()
            .insert(key.to_string(), (value.to_vec(), token));
        Ok(())
    }

    /// All keys currently stored under every `vm_id`, sorted (for assertions
    /// on namespacing).
    pub fn keys(&self) -> Vec<String> {
        let g = lock(&self.inner);
        let mut k: Vec<String> = g.maps.values().flat_map(|m| m.keys().cloned()).collect();
        k.sort();
        k
    }

    /// Number of keys stored under every `vm_id` (shared data must stay
    /// bounded).
    pub fn len(&self) -> usize {
        lock(&self.inner).maps.values().map(HashMap::len).sum()
    }

    /// Whether nothing was ever stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forces the CAS counter, to test wrap-around (the next token after
    /// `u32::MAX` must be 1, never 0, since 0 means "unconditional").
    pub fn set_last_cas(&self, cas: u32) {
        lock(&self.inner).last_cas = cas;
    }

    /// Makes each of the next `n` conditional sets (a non-zero `cas`, on a
    /// key that exists) lose a race: another worker rewrites the key, with
    /// a new token, just before it, so it fails with `CasMismatch`. The
    /// contention of many workers, made deterministic for tests.
    pub fn race_next_sets(&self, n: u32) {
        lock(&self.inner).races = n;
    }
}

impl SharedInner {
    /// The next CAS token: one counter for every map, never 0.
    fn next_cas(&mut self) -> u32 {
        self.last_cas = self.last_cas.wrapping_add(1);
        if self.last_cas == 0 {
            self.last_cas = 1;
        }
        self.last_cas
    }
}

/// The value of one metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricValue {
    /// Counter total.
    Counter(u64),
    /// Gauge value.
    Gauge(i64),
    /// Every recorded histogram sample, in order.
    Histogram(Vec<u64>),
}

/// The metrics registry shared by all VMs (clones share it), addressed by the
/// names the plugin defines, like Envoy stats.
#[derive(Clone, Default, Debug)]
pub struct Metrics {
    inner: Arc<Mutex<MetricsInner>>,
}

#[derive(Default, Debug)]
struct MetricsInner {
    by_name: HashMap<String, u32>,
    defs: Vec<(String, MetricKind, MetricValue)>,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Defines (or finds) a metric; the same name and kind always yields the
    /// same id, across VMs, so all workers add to one stat. A name reused
    /// with another kind is `BadArgument`.
    pub fn define(&self, kind: MetricKind, name: &str) -> Result<u32, Status> {
        let mut g = lock(&self.inner);
        if let Some(&id) = g.by_name.get(name) {
            return if g.defs[id as usize].1 == kind {
                Ok(id)
            } else {
                Err(Status::BadArgument)
            };
        }
        let id = g.defs.len() as u32;
        let zero = match kind {
            MetricKind::Counter => MetricValue::Counter(0),
            MetricKind::Gauge => MetricValue::Gauge(0),
            MetricKind::Histogram => MetricValue::Histogram(Vec::new()),
        };
        g.defs.push((name.to_string(), kind, zero));
        g.by_name.insert(name.to_string(), id);
        Ok(id)
    }

    /// `proxy_increment_metric`: counters reject `delta <= 0` (BadArgument,
    /// as the filter must never send them); gauges take any delta;
    /// histograms cannot be incremented.
    pub fn increment(&self, id: u32, delta: i64) -> Result<(), Status> {
        let mut g = lock(&self.inner);
        let def = g.defs.get_mut(id as usize).ok_or(Status::NotFound)?;
        match &mut def.2 {
            MetricValue::Counter(v) => {
                if delta <= 0 {
                    return Err(Status::BadArgument);
                }
                *v = v.saturating_add(delta as u64);
            }
            MetricValue::Gauge(v) => *v = v.saturating_add(delta),
            MetricValue::Histogram(_) => return Err(Status::BadArgument),
        }
        Ok(())
    }

    /// `proxy_record_metric`: adds to a counter, sets a gauge, records a
    /// histogram sample.
    pub fn record(&self, id: u32, value: u64) -> Result<(), Status> {
        let mut g = lock(&self.inner);
        let def = g.defs.get_mut(id as usize).ok_or(Status::NotFound)?;
        match &mut def.2 {
            MetricValue::Counter(v) => *v = v.saturating_add(value),
            MetricValue::Gauge(v) => *v = value as i64,
            MetricValue::Histogram(s) => s.push(value),
        }
        Ok(())
    }

    /// `proxy_get_metric`: counter or gauge value; histograms are BadArgument.
    pub fn get_by_id(&self, id: u32) -> Result<u64, Status> {
        let g = lock(&self.inner);
        match &g.defs.get(id as usize).ok_or(Status::NotFound)?.2 {
            MetricValue::Counter(v) => Ok(*v),
            MetricValue::Gauge(v) => Ok(*v as u64),
            MetricValue::Histogram(_) => Err(Status::BadArgument),
        }
    }

    /// A metric's value by the name the plugin defined.
    pub fn get(&self, name: &str) -> Option<MetricValue> {
        let g = lock(&self.inner);
        g.by_name.get(name).map(|&id| g.defs[id as usize].2.clone())
    }

    /// A counter's total; `None` if not defined (or not a counter).
    pub fn counter(&self, name: &str) -> Option<u64> {
        match self.get(name)? {
            MetricValue::Counter(v) => Some(v),
            _ => None,
        }
    }

    /// A gauge's value; `None` if not defined (or not a gauge).
    pub fn gauge(&self, name: &str) -> Option<i64> {
        match self.get(name)? {
            MetricValue::Gauge(v) => Some(v),
            _ => None,
        }
    }

    /// A histogram's samples; `None` if not defined (or not a histogram).
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        match self.get(name)? {
            MetricValue::Histogram(v) => Some(v),
            _ => None,
        }
    }

    /// Every metric by name, sorted.
    pub fn snapshot(&self) -> BTreeMap<String, MetricValue> {
        lock(&self.inner)
            .defs
            .iter()
            .map(|(n, _, v)| (n.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_rules_match_envoy() {
        let s = SharedData::new();
        assert_eq!(s.get("k"), None);
        // Non-zero cas on a missing key succeeds.
        s.set("k", b"a", 77).unwrap();
        let (v, cas1) = s.get("k").unwrap();
        assert_eq!((v.as_slice(), cas1), (&b"a"[..], 1));
        // Stale cas fails and leaves the value alone.
        s.set("k", b"b", cas1).unwrap();
        assert_eq!(s.set("k", b"c", cas1), Err(Status::CasMismatch));
        let (v, cas2) = s.get("k").unwrap();
        assert_eq!(v, b"b");
        assert_ne!(cas1, cas2);
        // cas 0 writes unconditionally.
        s.set("k", b"d", 0).unwrap();
        assert_eq!(s.get("k").unwrap().0, b"d");
    }

    #[test]
    fn each_vm_id_has_its_own_map_and_one_counter_serves_all() {
        let s = SharedData::new();
        s.set_in("a", "k", b"in a", 0).unwrap();
        assert_eq!(s.get_in("b", "k"), None);
        assert_eq!(s.get("k"), None, "the empty vm_id is a vm_id too");
        // A cas from another map does not apply here (a missing key takes
        // any).
        s.set_in("b", "k", b"in b", 1).unwrap();
        assert_eq!(s.get_in("a", "k"), Some((b"in a".to_vec(), 1)));
        assert_eq!(s.get_in("b", "k"), Some((b"in b".to_vec(), 2)));
        assert_eq!(s.set_in("b", "k", b"x", 1), Err(Status::CasMismatch));
        assert_eq!(
            (s.len(), s.keys()),
            (2, vec!["k".to_string(), "k".to_string()])
        );
    }

    #[test]
    fn cas_counter_skips_zero_on_wrap() {
        let s = SharedData::new();
        s.set_last_cas(u32::MAX - 1);
        s.set("a", b"", 0).unwrap();
        assert_eq!(s.get("a").unwrap().1, u32::MAX);
        s.set("b", b"", 0).unwrap();
        assert_eq!(s.get("b").unwrap().1, 1);
    }

    #[test]
    fn counters_reject_non_positive_deltas() {
        let m = Metrics::new();
        let c = m.define(MetricKind::Counter, "c").unwrap();
        assert_eq!(m.define(MetricKind::Counter, "c"), Ok(c));
        assert_eq!(m.define(MetricKind::Gauge, "c"), Err(Status::BadArgument));
        assert_eq!(m.increment(c, 0), Err(Status::BadArgument));
        assert_eq!(m.increment(c, -1), Err(Status::BadArgument));
        m.increment(c, 3).unwrap();
        assert_eq!(m.counter("c"), Some(3));
        let g = m.define(MetricKind::Gauge, "g").unwrap();
        m.increment(g, -2).unwrap();
        assert_eq!(m.gauge("g"), Some(-2));
        let h = m.define(MetricKind::Histogram, "h").unwrap();
        assert_eq!(m.increment(h, 1), Err(Status::BadArgument));
        m.record(h, 9).unwrap();
        assert_eq!(m.histogram("h"), Some(vec![9]));
        assert_eq!(m.increment(999, 1), Err(Status::NotFound));
    }
}
