//! Small proxy-wasm guests written in WAT, so the host's own semantics are
//! tested independently of the real plugin.
#![allow(dead_code)]

use json_sanitizer_host::{module_from_bytes, Host, HostBuilder};

/// Imports every guest may use (all defined by the host).
const IMPORTS: &str = r#"
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $incr (param i32 i64) (result i32)))
  (import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
"#;

/// Memory layout: 0 = returned pointer slot, 4 = returned size slot,
/// 8 = probe metric id, 16 = u64 slot, 1024.. = prelude strings,
/// 2048.. = test strings, heap from 64 KiB.
const PRELUDE: &str = r#"
  (memory (export "memory") 32)
  (global $heap (mut i32) (i32.const 65536))
  (data (i32.const 1024) "probe")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32) (local $p i32)
    global.get $heap
    local.set $p
    global.get $heap
    local.get $n
    i32.add
    global.set $heap
    local.get $p)
  ;; Defines the histogram `probe`; tests read what the guest observed from it.
  (func $init_probe
    (drop (call $define (i32.const 2) (i32.const 1024) (i32.const 5) (i32.const 8))))
  (func $probe (param $v i64)
    (drop (call $record (i32.load (i32.const 8)) (local.get $v))))
  (func $probe32 (param $v i32)
    (call $probe (i64.extend_i32_u (local.get $v))))
"#;

/// A guest module: the shared imports, `extra_imports`, the prelude, then
/// `funcs`. Default `proxy_on_vm_start` (defines the probe) and
/// `proxy_on_configure` (accepts) are added unless `funcs` exports them.
pub fn guest_with_imports(extra_imports: &str, funcs: &str) -> wasmtime::Module {
    let mut wat = String::from("(module\n");
    wat.push_str(IMPORTS);
    wat.push_str(extra_imports);
    wat.push_str(PRELUDE);
    if !funcs.contains("\"proxy_on_vm_start\"") {
        wat.push_str(
            r#"(func (export "proxy_on_vm_start") (param i32 i32) (result i32) call $init_probe i32.const 1)"#,
        );
    }
    if !funcs.contains("\"proxy_on_configure\"") {
        wat.push_str(
            r#"(func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)"#,
        );
    }
    wat.push_str(funcs);
    wat.push_str("\n)\n");
    module_from_bytes(wat.as_bytes()).unwrap_or_else(|e| panic!("{e:#}\n{wat}"))
}

/// [`guest_with_imports`] without extra imports.
pub fn guest(funcs: &str) -> wasmtime::Module {
    guest_with_imports("", funcs)
}

/// A host builder for a guest.
pub fn host(funcs: &str) -> HostBuilder {
    Host::builder(guest(funcs))
}

/// A host builder for a guest with `extra_imports`.
pub fn host_with_imports(extra_imports: &str, funcs: &str) -> HostBuilder {
    Host::builder(guest_with_imports(extra_imports, funcs))
}

/// A host for a guest with `extra_imports`, and one started VM.
pub fn start_with_imports(extra_imports: &str, funcs: &str) -> (Host, json_sanitizer_host::Vm) {
    let host = host_with_imports(extra_imports, funcs).build().unwrap();
    let vm = host.start_vm().unwrap();
    (host, vm)
}

/// What the guest recorded with `$probe`, in order.
pub fn probes(host: &Host) -> Vec<u64> {
    host.metrics().histogram("probe").unwrap_or_default()
}

/// Same, as signed numbers.
pub fn probes_i(host: &Host) -> Vec<i64> {
    probes(host).into_iter().map(|v| v as i64).collect()
}
