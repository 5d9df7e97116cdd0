//! Layer 3: the filter as Envoy sees it. The per-request state machine
//! ([`session`]) is plain Rust behind the [`session::Host`] trait; only the
//! glue (`wasm`, compiled for wasm32 only) touches proxy-wasm, through its
//! own non-panicking hostcall wrappers.

pub mod decode;
pub mod log_budget;
pub mod metrics;
pub mod pairs;
pub mod plugin;
pub mod session;
pub mod sniff;

#[cfg(target_arch = "wasm32")]
mod hostcalls;
#[cfg(target_arch = "wasm32")]
mod wasm;
