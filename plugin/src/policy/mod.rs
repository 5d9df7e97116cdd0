//! Layer 2: what the operator asked for. Configuration (validated, with errors
//! that name the field), per-route rules, the circuit breaker state machine and
//! the reply for each violation. Pure Rust: time and storage are passed in.

pub mod breaker;
pub mod config;
pub mod error;
pub mod media;
pub mod path;
pub mod reply;
pub mod rules;
