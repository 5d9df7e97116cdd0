//! json-sanitizer: a proxy-wasm HTTP filter that inspects JSON request bodies
//! as they stream through Envoy and stops the ones that would hurt the service
//! behind it.
//!
//! Three layers, each readable and testable alone (see `DESIGN.md`):
//! - [`inspector`]: an incremental, allocation-free JSON scanner; knows no HTTP.
//! - [`policy`]: configuration, per-route rules, the circuit breaker, replies.
//! - [`filter`]: the per-request state machine and the thin proxy-wasm glue.

mod ascii;
pub mod filter;
pub mod inspector;
pub mod policy;
pub mod samples;
pub mod violation;
