//! The few proxy-wasm hostcalls the filter makes, declared here rather than
//! taken from the SDK's wrappers: those panic on any status they do not
//! expect (and read the status into a Rust enum, which an out-of-range value
//! from the host would make undefined). Here every status is a plain `u32`
//! and every answer is checked, so no host answer can trap the VM.

use super::pairs::encode_pairs;
use super::session::RequestHead;
use std::ptr::{null, null_mut};

/// `BufferType::HttpRequestBody`.
pub const BUFFER_HTTP_REQUEST_BODY: u32 = 0;
/// `BufferType::PluginConfiguration`.
pub const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
/// `MapType::HttpRequestHeaders`.
pub const MAP_HTTP_REQUEST_HEADERS: u32 = 0;
/// `MapType::HttpResponseHeaders`.
const MAP_HTTP_RESPONSE_HEADERS: u32 = 2;
/// `MetricType::Counter`.
const METRIC_COUNTER: u32 = 0;
/// `Status::Ok`.
const OK: u32 = 0;
/// `Status::CasMismatch`.
pub const CAS_MISMATCH: u32 = 8;

/// Log levels of the ABI.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum LogLevel {
    /// Info.
    Info = 2,
    /// Warn.
    Warn = 3,
    /// Error.
    Error = 4,
}

#[link(wasm_import_module = "env")]
extern "C" {
    #[link_name = "proxy_log"]
    fn raw_log(level: u32, data: *const u8, size: usize) -> u32;
    #[link_name = "proxy_get_current_time_nanoseconds"]
    fn raw_get_current_time_nanoseconds(time: *mut u64) -> u32;
    #[link_name = "proxy_get_buffer_bytes"]
    fn raw_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    #[link_name = "proxy_get_header_map_pairs"]
    fn raw_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    #[link_name = "proxy_send_local_response"]
    fn raw_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    #[link_name = "proxy_close_stream"]
    fn raw_close_stream(stream_type: u32) -> u32;
    #[link_name = "proxy_get_shared_data"]
    fn raw_get_shared_data(
        key: *const u8,
        key_size: usize,
        value: *mut *mut u8,
        value_size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    #[link_name = "proxy_set_shared_data"]
    fn raw_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    #[link_name = "proxy_get_property"]
    fn raw_get_property(
        path: *const u8,
        path_size: usize,
        value: *mut *mut u8,
        value_size: *mut usize,
    ) -> u32;
    #[link_name = "proxy_set_property"]
    fn raw_set_property(
        path: *const u8,
        path_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    #[link_name = "proxy_define_metric"]
    fn raw_define_metric(metric_type: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    #[link_name = "proxy_increment_metric"]
    fn raw_increment_metric(id: u32, delta: i64) -> u32;
}

/// Takes ownership of a buffer the host allocated through
/// `proxy_on_memory_allocate` (the SDK's allocator, a `Vec<u8>`).
fn owned(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    // SAFETY: per the ABI, a non-null pointer returned by the host was
    // obtained from `proxy_on_memory_allocate(size)`, i.e. it is a `Vec<u8>`
    // allocation of exactly `size` bytes that the host filled and hands over.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

/// Writes a log line; a refusal by the host is ignored (nowhere to report it).
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: pointer and length of a live `str`.
    unsafe {
        raw_log(level as u32, message.as_ptr(), message.len());
    }
}

/// The host clock in milliseconds since the epoch, `None` if it will not say.
pub fn now_ms() -> Option<u64> {
    let mut ns = 0u64;
    // SAFETY: `ns` is a valid out-pointer.
    let status = unsafe { raw_get_current_time_nanoseconds(&mut ns) };
    (status == OK).then_some(ns / 1_000_000)
}

/// Bytes `[start, start + len)` of a host buffer, or `None`.
pub fn buffer(buffer_type: u32, start: usize, len: usize) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: valid out-pointers; the result is checked before use.
    let status = unsafe { raw_get_buffer_bytes(buffer_type, start, len, &mut data, &mut size) };
    let bytes = owned(data, size);
    if status == OK {
        bytes
    } else {
        None
    }
}

/// The request headers, or `None` if the host refuses (outside the headers
/// callback Envoy answers BAD_ARGUMENT).
pub fn request_headers() -> Option<RequestHead> {
    header_map(MAP_HTTP_REQUEST_HEADERS)
}

/// The response's `:status`, in the response headers callback; `None` if
/// the host refuses the map or the status is no number.
pub fn response_status() -> Option<u16> {
    let head = header_map(MAP_HTTP_RESPONSE_HEADERS)?;
    std::str::from_utf8(head.get_raw(":status")?)
        .ok()?
        .trim_ascii()
        .parse()
        .ok()
}

/// A header map of the host's, or `None` if it refuses it.
fn header_map(map_type: u32) -> Option<RequestHead> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: valid out-pointers; the result is checked before use.
    let status = unsafe { raw_get_header_map_pairs(map_type, &mut data, &mut size) };
    let bytes = owned(data, size);
    if status != OK {
        return None;
    }
    RequestHead::from_encoded(bytes.unwrap_or_default())
}

/// Sends the local reply (it takes effect when the callback returns).
pub fn send_local_response(
    status: u16,
    details: &str,
    body: &[u8],
    headers: &[(String, String)],
) -> bool {
    let map = encode_pairs(headers);
    // SAFETY: pointers and lengths of live buffers.
    let result = unsafe {
        raw_send_local_response(
            u32::from(status),
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            map.as_ptr(),
            map.len(),
            -1,
        )
    };
    result == OK
}

/// `StreamType::HttpRequest`.
const STREAM_HTTP_REQUEST: u32 = 0;

/// `proxy_close_stream(HttpRequest)`: Envoy resets the request's stream
/// (downstream and, if it started, upstream). `false` if the host refused.
pub fn reset_request_stream() -> bool {
    // SAFETY: no pointers.
    unsafe { raw_close_stream(STREAM_HTTP_REQUEST) == OK }
}

/// `proxy_get_shared_data`: `Ok((value, cas))`, or the status on refusal.
/// NOT_FOUND (1) is an absent key, not an error.
pub fn get_shared_data(key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), u32> {
    let (mut data, mut size, mut cas) = (null_mut(), 0usize, 0u32);
    // SAFETY: valid pointers and out-pointers; the result is checked.
    let status =
        unsafe { raw_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    let value = owned(data, size);
    match status {
        OK => Ok((value, (cas != 0).then_some(cas))),
        1 => Ok((None, None)),
        other => Err(other),
    }
}

/// `proxy_set_shared_data` with a CAS token (0 = unconditional).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), u32> {
    let ptr = if value.is_empty() {
        null()
    } else {
        value.as_ptr()
    };
    // SAFETY: pointers and lengths of live buffers.
    match unsafe { raw_set_shared_data(key.as_ptr(), key.len(), ptr, value.len(), cas) } {
        OK => Ok(()),
        other => Err(other),
    }
}

/// A property by path segments (`["source", "address"]`), or `None`.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    let encoded = path.join("\0");
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: valid pointers and out-pointers; the result is checked.
    let status = unsafe { raw_get_property(encoded.as_ptr(), encoded.len(), &mut data, &mut size) };
    let value = owned(data, size);
    if status == OK {
        value
    } else {
        None
    }
}

/// Sets a one-segment property of the stream (Envoy: filter state
/// `wasm.<path>`); `false` if the host refuses.
pub fn set_property(path: &str, value: &[u8]) -> bool {
    // SAFETY: pointers and lengths of live buffers.
    let status =
        unsafe { raw_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) };
    status == OK
}

/// Defines a counter; `None` if the host refuses.
pub fn define_counter(name: &str) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: pointer and length of a live `str`, valid out-pointer.
    let status = unsafe { raw_define_metric(METRIC_COUNTER, name.as_ptr(), name.len(), &mut id) };
    (status == OK).then_some(id)
}

/// Adds `delta` to a counter (the host rejects deltas <= 0; callers never
/// pass them).
pub fn increment(id: u32, delta: u64) {
    let delta = i64::try_from(delta).unwrap_or(i64::MAX);
    if delta > 0 {
        // SAFETY: plain values.
        unsafe {
            raw_increment_metric(id, delta);
        }
    }
}
