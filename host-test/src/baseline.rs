//! serde_json compiled to wasm and run by the plugin's engine: the baseline
//! that differs from the plugin only in the code that reads the JSON.
//!
//! Native serde_json, the baseline the goals are stated against, differs
//! from the plugin in two ways at once: the JSON reader, and native code
//! against wasm (Cranelift, 32-bit linear memory, an epoch check on every
//! loop). This baseline (`host-test/serde-baseline`, built for
//! `wasm32-wasip1` with the plugin's profile) takes the second away, so
//! `bench` can show how much of a gap is the runtime's.

use crate::engine::{self, EPOCH_TICK};
use anyhow::{bail, Context as _, Result};
use std::time::Duration;
use wasmtime::{Linker, Memory, Store, TypedFunc};

/// An instance of the serde_json baseline module.
pub struct SerdeInWasm {
    store: Store<()>,
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    validate: TypedFunc<(u32, u32), u32>,
}

/// A document copied into the baseline's memory: its address and length.
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    at: u32,
    len: u32,
}

/// Wall-clock budget of one call, as for a plugin callback: runaway code
/// traps instead of hanging the bench.
const BUDGET: Duration = Duration::from_secs(30);

impl SerdeInWasm {
    /// Builds the module when stale, compiles it (cached like the plugin)
    /// and instantiates it in the plugin's engine.
    pub fn start() -> Result<Self> {
        let module = engine::load_module(&engine::ensure_serde_baseline()?)?;
        let mut linker = Linker::new(module.engine());
        // Validation makes no WASI calls; any it did would trap, loudly.
        linker.define_unknown_imports_as_traps(&module)?;
        let mut store = Store::new(module.engine(), ());
        store.set_epoch_deadline(budget_ticks());
        let instance = linker.instantiate(&mut store, &module)?;
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ())?;
        }
        let memory = instance
            .get_memory(&mut store, "memory")
            .context("the serde baseline module exports no memory")?;
        Ok(Self {
            alloc: instance.get_typed_func(&mut store, "alloc")?,
            validate: instance.get_typed_func(&mut store, "validate")?,
            store,
            memory,
        })
    }

    /// Copies `document` into the module's memory, once, for [`Self::validate`].
    pub fn place(&mut self, document: &[u8]) -> Result<Placed> {
        let len = u32::try_from(document.len()).context("a document over 4 GiB")?;
        self.store.set_epoch_deadline(budget_ticks());
        let at = self.alloc.call(&mut self.store, len)?;
        if at == 0 {
            bail!("the serde baseline module could not allocate {len} bytes");
        }
        self.memory.write(&mut self.store, at as usize, document)?;
        Ok(Placed { at, len })
    }

    /// Whether serde_json, in wasm, takes the placed document for JSON.
    pub fn validate(&mut self, placed: Placed) -> Result<bool> {
        self.store.set_epoch_deadline(budget_ticks());
        let ok = self
            .validate
            .call(&mut self.store, (placed.at, placed.len))?;
        Ok(ok == 1)
    }
}

fn budget_ticks() -> u64 {
    (BUDGET.as_nanos() / EPOCH_TICK.as_nanos()) as u64
}
