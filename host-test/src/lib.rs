//! A wasmtime-based proxy-wasm host that runs the json-sanitizer plugin like Envoy does.

pub mod oci;
