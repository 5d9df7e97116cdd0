//! A wasmtime-based proxy-wasm host that runs the json-sanitizer plugin like
//! Envoy does, so that a filter that would misbehave in Envoy misbehaves here.
//!
//! - [`ensure_plugin`] / [`plugin_module`]: build and compile the real plugin once.
//! - [`Host`]: one configured plugin with its shared clock, shared data and metrics;
//!   [`Host::start_vm`] starts worker [`Vm`]s like Envoy (initialize, vm start, configure).
//! - [`Vm::send`] drives a [`Request`] through the HTTP callbacks with Envoy's
//!   stream rules and returns an [`Outcome`].
//!
//! - [`SerdeInWasm`]: serde_json compiled to wasm in the same engine, the
//!   like-for-like baseline of `bench`.
//!
//! The host semantics reproduced are listed in `DESIGN.md` ("Host semantics
//! the filter must respect"); the hostcall answers follow proxy-wasm ABI 0.2.1.

/// `println!` for the CLI: a failed write (stdout closed early, as by
/// `| head`) comes back as an error, for a one-line message and exit 2,
/// where `println!` would panic.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        ::std::writeln!(::std::io::stdout(), $($arg)*)
    }};
}

pub mod abi;
pub mod baseline;
pub mod clock;
pub mod engine;
mod imports;
pub mod oci;
mod provided;
pub mod request;
pub mod shared;
pub mod vm;
pub mod workload;

pub use abi::{Action, LogLevel, MetricKind, Status};
pub use baseline::{Placed, SerdeInWasm};
pub use clock::Clock;
pub use engine::{ensure_plugin, load_module, module_from_bytes, plugin_module};
pub use request::{
    CallbackArgs, CallbackRecord, HostRefusals, HostcallCounts, LocalReply, LogLine, LogSource,
    Outcome, ReplySource, Request, Summary, Verdict,
};
pub use shared::{MetricValue, Metrics, SharedData};
pub use vm::{Host, HostBuilder, HostOptions, StartError, Vm};
