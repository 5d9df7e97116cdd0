//! What Envoy links a module against: proxy-wasm-cpp-host's host functions
//! and its subset of WASI preview 1. Envoy refuses to load a module that
//! imports anything else ("Failed to load Wasm module due to a missing
//! import"), so the harness refuses it too: a dependency that pulls in,
//! say, `wasi_snapshot_preview1.path_filestat_get` must fail here, not at
//! the first deployment.

/// The `env` functions of every ABI version (proxy-wasm-cpp-host's
/// `FOR_ALL_HOST_FUNCTIONS`), and Envoy's own `envoy_resolve_dns`.
const ENV_FUNCTIONS: &[&str] = &[
    "proxy_log",
    "proxy_get_status",
    "proxy_set_property",
    "proxy_get_property",
    "proxy_send_local_response",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_get_header_map_value",
    "proxy_add_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_size",
    "proxy_get_buffer_status",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_close",
    "proxy_grpc_cancel",
    "proxy_grpc_send",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_current_time_nanoseconds",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
    "proxy_set_effective_context",
    "proxy_done",
    "proxy_call_foreign_function",
    "envoy_resolve_dns",
];

/// The functions only a module of ABI 0.1.0 is linked against.
const ABI_0_1_0: &[&str] = &[
    "proxy_get_configuration",
    "proxy_continue_request",
    "proxy_continue_response",
    "proxy_clear_route_cache",
];

/// Those of ABI 0.2.0; 0.2.1 adds `proxy_get_log_level`.
const ABI_0_2_0: &[&str] = &["proxy_continue_stream", "proxy_close_stream"];

/// The proxy-wasm ABI a module declares by its `proxy_abi_version_*`
/// export, which decides part of what Envoy links it against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abi {
    V0_1_0,
    V0_2_0,
    V0_2_1,
    /// No version export: not a proxy-wasm module (refused at start-up).
    None,
}

impl Abi {
    /// The ABI of a module with these export names (the newest it names).
    pub(crate) fn of<'a>(mut exports: impl Iterator<Item = &'a str>) -> Abi {
        let names: Vec<&str> = exports.by_ref().collect();
        let has = |v: &str| names.contains(&v);
        if has("proxy_abi_version_0_2_1") {
            Abi::V0_2_1
        } else if has("proxy_abi_version_0_2_0") {
            Abi::V0_2_0
        } else if has("proxy_abi_version_0_1_0") {
            Abi::V0_1_0
        } else {
            Abi::None
        }
    }
}

/// The WASI functions, under both `wasi_snapshot_preview1` and
/// `wasi_unstable`. Others (`poll_oneoff`, `sched_yield`, `clock_res_get`,
/// `path_filestat_get`...) are missing imports to Envoy.
const WASI_FUNCTIONS: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_seek",
    "fd_close",
    "fd_fdstat_get",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "clock_time_get",
    "random_get",
    "proc_exit",
    "path_open",
    "fd_prestat_get",
    "fd_prestat_dir_name",
];

/// Whether Envoy provides the function `module.name` to a module of `abi`.
pub(crate) fn by_envoy(module: &str, name: &str, abi: Abi) -> bool {
    let for_abi = match abi {
        Abi::V0_1_0 => ABI_0_1_0.contains(&name),
        Abi::V0_2_0 => ABI_0_2_0.contains(&name),
        Abi::V0_2_1 => ABI_0_2_0.contains(&name) || name == "proxy_get_log_level",
        Abi::None => false,
    };
    match module {
        "env" => ENV_FUNCTIONS.contains(&name) || for_abi,
        "wasi_snapshot_preview1" | "wasi_unstable" => WASI_FUNCTIONS.contains(&name),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_name_envoys_functions_only() {
        let abi = Abi::V0_2_1;
        assert!(by_envoy("env", "proxy_get_buffer_bytes", abi));
        assert!(by_envoy("env", "envoy_resolve_dns", abi));
        assert!(by_envoy("wasi_unstable", "fd_write", abi));
        assert!(by_envoy("wasi_snapshot_preview1", "random_get", abi));
        assert!(!by_envoy("env", "proxy_made_up", abi));
        assert!(!by_envoy("env", "emscripten_notify_memory_growth", abi));
        assert!(!by_envoy("wasi_snapshot_preview1", "sched_yield", abi));
        assert!(!by_envoy("other", "fd_write", abi));
    }

    /// As proxy-wasm-cpp-host's `registerCallbacks`: a 0.2.1 module gets
    /// `proxy_continue_stream` and `proxy_get_log_level`, not the 0.1.0
    /// `proxy_continue_request`; 0.2.0 has no `proxy_get_log_level`.
    #[test]
    fn abi_specific_functions_follow_the_declared_version() {
        let all = [
            "proxy_continue_request",
            "proxy_continue_stream",
            "proxy_get_log_level",
        ];
        let linked = |abi| all.map(|n| by_envoy("env", n, abi));
        assert_eq!(linked(Abi::V0_2_1), [false, true, true]);
        assert_eq!(linked(Abi::V0_2_0), [false, true, false]);
        assert_eq!(linked(Abi::V0_1_0), [true, false, false]);
        assert_eq!(linked(Abi::None), [false, false, false]);
        let exports = ["memory", "proxy_abi_version_0_2_1", "proxy_on_vm_start"];
        assert_eq!(Abi::of(exports.into_iter()), Abi::V0_2_1);
        assert_eq!(
            Abi::of(["proxy_abi_version_0_1_0"].into_iter()),
            Abi::V0_1_0
        );
        assert_eq!(Abi::of(["memory"].into_iter()), Abi::None);
    }
}
