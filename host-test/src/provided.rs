//! What Envoy links a module against: proxy-wasm-cpp-host's host functions
//! and its subset of WASI preview 1. Envoy refuses to load a module that
//! imports anything else ("Failed to load Wasm module due to a missing
//! import"), so the harness refuses it too: a dependency that pulls in,
//! say, `wasi_snapshot_preview1.path_filestat_get` must fail here, not at
//! the first deployment.

/// The `env` functions: every proxy-wasm host call of ABI 0.2.1 and 0.1.0,
/// and the two Emscripten helpers proxy-wasm-cpp-host also defines.
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
    "proxy_get_configuration",
    "proxy_continue_request",
    "proxy_continue_response",
    "proxy_clear_route_cache",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_get_log_level",
    "pthread_equal",
    "emscripten_notify_memory_growth",
];

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

/// Whether Envoy provides the function `module.name`.
pub(crate) fn by_envoy(module: &str, name: &str) -> bool {
    match module {
        "env" => ENV_FUNCTIONS.contains(&name),
        "wasi_snapshot_preview1" | "wasi_unstable" => WASI_FUNCTIONS.contains(&name),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_name_envoys_functions_only() {
        assert!(by_envoy("env", "proxy_get_buffer_bytes"));
        assert!(by_envoy("wasi_unstable", "fd_write"));
        assert!(by_envoy("wasi_snapshot_preview1", "random_get"));
        assert!(!by_envoy("env", "proxy_made_up"));
        assert!(!by_envoy("wasi_snapshot_preview1", "sched_yield"));
        assert!(!by_envoy("other", "fd_write"));
    }
}
