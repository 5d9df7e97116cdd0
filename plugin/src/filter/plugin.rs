//! What every request of one plugin instance shares: the validated
//! configuration and what was derived from it at `on_configure`.

use super::decode::{Coding, Decoder};
use super::log_budget::LogBudget;
use crate::inspector::Inspector;
use crate::policy::breaker;
use crate::policy::config::{Config, Policy};
use std::cell::{Cell, RefCell};

/// The most heap a recycled inspector may keep between requests.
pub const RECYCLE_MAX_BYTES: usize = 64 << 10;

/// One configured plugin (one root context).
#[derive(Debug)]
pub struct Plugin {
    /// The validated configuration.
    pub config: Config,
    /// Secret seed for duplicate-key fingerprints (random per VM), so that
    /// clients cannot precompute colliding keys.
    pub seed: u64,
    /// Shared-data namespace of each breaker: index 0 for the top-level
    /// section, `i + 1` for a rule `i` with its own `breaker` section.
    namespaces: Vec<String>,
    /// One inspector per policy index, left by a finished request for the
    /// next one under the same policy: its stack and key table are already
    /// allocated, which saves the allocator round trips on every request.
    /// A VM runs one callback at a time, so a `RefCell` never contends.
    /// Boxed, so that handing one over moves a pointer, not the whole
    /// inspector (in wasm each such move is a `memory.copy` call into the
    /// runtime).
    spare_inspectors: RefCell<Vec<Option<Box<Inspector>>>>,
    /// One body decoder, left by a finished encoded request for the next:
    /// a new one costs an allocation and the zeroing of its 43 KiB, about
    /// as much as decoding a small body.
    spare_decoder: RefCell<Option<Box<Decoder>>>,
    /// Bytes the requests not yet judged hold for their inspection, which
    /// `max_memory_bytes` bounds (see [`Plugin::hold_memory`]).
    in_flight: Cell<u64>,
    /// This worker's request log lines this second (see [`LogBudget`]).
    pub log_budget: LogBudget,
}

impl Plugin {
    /// Derives the per-plugin state. `identity` distinguishes plugins that
    /// share a VM's shared data (root id and plugin name; Istio sets no
    /// `vm_id`), `raw_config` is the configuration as received, so two
    /// configurations never share breaker state.
    pub fn new(config: Config, identity: &str, raw_config: &[u8], seed: u64) -> Self {
        let base = breaker::namespace(identity, raw_config);
        let namespaces = (0..=config.rules.len())
            .map(|i| {
                if i == 0 {
                    base.clone()
                } else {
                    format!("{base}r{i}")
                }
            })
            .collect();
        Self {
            log_budget: LogBudget::new(config.max_log_lines_per_second),
            config,
            seed,
            namespaces,
            spare_inspectors: RefCell::default(),
            spare_decoder: RefCell::default(),
            in_flight: Cell::new(0),
        }
    }

    /// Moves one request's share of the memory in flight from `held` bytes
    /// to `now`. False, with nothing moved, when growing to `now` would take
    /// the total past `max_memory_bytes`: the VM's memory is the workers'
    /// last line, and a trap there fails every request after it.
    pub fn hold_memory(&self, held: u64, now: u64) -> bool {
        let others = self.in_flight.get().saturating_sub(held);
        let total = others.saturating_add(now);
        let over = self.config.max_memory_bytes.is_some_and(|max| total > max);
        if now > held && over {
            return false;
        }
        self.in_flight.set(total);
        true
    }

    /// Bytes the requests not yet judged hold for their inspection.
    pub fn memory_in_flight(&self) -> u64 {
        self.in_flight.get()
    }

    /// A fresh-state inspector for policy `index`: a recycled one when a
    /// previous request left one, else a new one.
    pub fn inspector(&self, index: usize) -> Box<Inspector> {
        let recycled = self
            .spare_inspectors
            .try_borrow_mut()
            .ok()
            .and_then(|mut spare| spare.get_mut(index).and_then(Option::take));
        match recycled {
            Some(mut inspector) => {
                inspector.reset();
                inspector
            }
            None => {
                let policy = self.config.policy(index);
                Box::new(Inspector::with_seed(
                    &policy.limits,
                    &policy.json,
                    self.seed,
                ))
            }
        }
    }

    /// Keeps `inspector` (made by [`Plugin::inspector`] for `index`) for the
    /// next request under that policy, unless an unusual body (a huge
    /// object under unlimited `max_object_entries`) grew it beyond
    /// [`RECYCLE_MAX_BYTES`]: that memory goes back to the allocator.
    pub fn recycle(&self, index: usize, inspector: Box<Inspector>) {
        if index > self.config.rules.len() || inspector.footprint() > RECYCLE_MAX_BYTES {
            return;
        }
        if let Ok(mut spare) = self.spare_inspectors.try_borrow_mut() {
            if spare.len() <= index {
                spare.resize_with(index + 1, || None);
            }
            spare[index] = Some(inspector);
        }
    }

    /// A fresh-state decoder for a body in `coding`: the recycled one when a
    /// previous request left it, else a new one.
    pub fn decoder(&self, coding: Coding) -> Box<Decoder> {
        let recycled = self
            .spare_decoder
            .try_borrow_mut()
            .ok()
            .and_then(|mut spare| spare.take());
        match recycled {
            Some(mut decoder) => {
                decoder.restart(coding);
                decoder
            }
            None => Box::new(Decoder::new(coding)),
        }
    }

    /// Keeps `decoder` for the next encoded request.
    pub fn recycle_decoder(&self, decoder: Box<Decoder>) {
        if let Ok(mut spare) = self.spare_decoder.try_borrow_mut() {
            *spare = Some(decoder);
        }
    }

    /// The shared-data namespace of `policy`'s breaker.
    pub fn breaker_namespace(&self, policy: &Policy) -> &str {
        self.namespaces
            .get(policy.breaker_id)
            .or_else(|| self.namespaces.first())
            .map_or("", String::as_str)
    }
}
