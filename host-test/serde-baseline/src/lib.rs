//! serde_json's validation of a JSON document, as a wasm module.
//!
//! `json-sanitizer-host bench` compares the plugin with native serde_json,
//! which mixes two things: the inspector against serde_json, and wasm code
//! (Cranelift, 32-bit linear memory, epoch checks) against native code. This
//! module is serde_json itself compiled to the plugin's target and profile
//! and run by the same engine, so the bench can also show the inspector
//! against serde_json on equal terms.
//!
//! The host calls [`alloc`] once for a buffer, writes the document into it,
//! then calls [`validate`] as often as it likes.

use serde::de::IgnoredAny;

/// A buffer of `len` bytes in linear memory that lives until the instance
/// goes away; its address, or 0 when it cannot be had.
#[no_mangle]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    let mut buffer = Vec::<u8>::new();
    if buffer.try_reserve_exact(len).is_err() {
        return std::ptr::null_mut();
    }
    buffer.resize(len, 0);
    Box::leak(buffer.into_boxed_slice()).as_mut_ptr()
}

/// 1 when the `len` bytes at `ptr` are one JSON document as
/// `serde_json::from_slice::<IgnoredAny>` sees it, 0 otherwise: the same
/// call the native baseline times.
///
/// # Safety
///
/// `ptr..ptr + len` must lie inside one buffer returned by [`alloc`].
#[no_mangle]
pub unsafe extern "C" fn validate(ptr: *const u8, len: usize) -> u32 {
    // SAFETY: the caller passes (part of) a live buffer from `alloc`.
    let document = unsafe { std::slice::from_raw_parts(ptr, len) };
    u32::from(is_json(document))
}

/// Whether `document` is one JSON value to serde_json.
pub fn is_json(document: &[u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(document).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_told_from_non_documents() {
        assert!(is_json(br#"{"a":[1,2.5,"x",null]}"#));
        assert!(!is_json(br#"{"a":[1,2.5,"x",null]"#));
        assert!(!is_json(b"[1,]"));
    }

    #[test]
    fn a_buffer_from_alloc_is_validated_in_place() {
        let text = br#"[true, {"k": "v"}]"#;
        let ptr = alloc(text.len());
        assert!(!ptr.is_null());
        // SAFETY: `ptr` is a fresh buffer of `text.len()` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), ptr, text.len());
            assert_eq!(validate(ptr, text.len()), 1);
            assert_eq!(validate(ptr, text.len() - 1), 0);
        }
    }
}
