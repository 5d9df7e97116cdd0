//! The shipped `.wasm` is built the way the release profile promises: full
//! optimisation, fat LTO, one codegen unit, `panic = "abort"`, stripped,
//! and it exports the proxy-wasm ABI Envoy looks for.

use json_sanitizer_host::engine;

/// The `key = value` lines of one `[section]` of the workspace manifest.
fn manifest_section(name: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(engine::workspace_root().join("Cargo.toml")).unwrap();
    let header = format!("[{name}]");
    text.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

#[test]
fn the_wasm_profile_is_the_promised_one() {
    let wasm = manifest_section("profile.wasm");
    for expected in [
        ("inherits", "\"release\""),
        ("lto", "true"),
        ("codegen-units", "1"),
        ("panic", "\"abort\""),
        ("strip", "true"),
    ] {
        assert!(
            wasm.iter()
                .any(|(k, v)| (k.as_str(), v.as_str()) == expected),
            "[profile.wasm] lacks {expected:?}: {wasm:?}"
        );
    }
    let release = manifest_section("profile.release");
    assert!(release.contains(&("opt-level".to_string(), "3".to_string())));
}

/// Reads a LEB128 `u32` at `*at`.
fn leb(bytes: &[u8], at: &mut usize) -> u32 {
    let (mut value, mut shift) = (0u32, 0);
    loop {
        let b = bytes[*at];
        *at += 1;
        value |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// `(section id, body)` of every section of a module.
fn sections(module: &[u8]) -> Vec<(u8, &[u8])> {
    assert_eq!(
        &module[..8],
        b"\0asm\x01\0\0\0",
        "a core wasm module, version 1"
    );
    let mut out = Vec::new();
    let mut at = 8;
    while at < module.len() {
        let id = module[at];
        at += 1;
        let size = leb(module, &mut at) as usize;
        out.push((id, &module[at..at + size]));
        at += size;
    }
    out
}

/// A name (LEB128 length, then UTF-8) at `*at`.
fn name(bytes: &[u8], at: &mut usize) -> String {
    let len = leb(bytes, at) as usize;
    let name = String::from_utf8_lossy(&bytes[*at..*at + len]).into_owned();
    *at += len;
    name
}

/// The names in a module's export section (id 7).
fn export_names(module: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for (_, body) in sections(module).into_iter().filter(|(id, _)| *id == 7) {
        let mut at = 0;
        for _ in 0..leb(body, &mut at) {
            out.push(name(body, &mut at));
            at += 1; // kind
            leb(body, &mut at); // index
        }
    }
    out
}

#[test]
fn the_built_plugin_is_stripped_and_exports_the_abi() {
    let path = engine::ensure_plugin().unwrap();
    let module = std::fs::read(&path).unwrap();
    let custom: Vec<String> = sections(&module)
        .into_iter()
        .filter(|(id, _)| *id == 0)
        .map(|(_, body)| name(body, &mut 0))
        .collect();
    assert!(
        !custom
            .iter()
            .any(|n| n == "name" || n.starts_with(".debug")),
        "stripped: no names or debug info, found {custom:?}"
    );
    let exports = export_names(&module);
    for export in [
        "proxy_abi_version_0_2_1",
        "proxy_on_request_body",
        "proxy_on_memory_allocate",
    ] {
        assert!(
            exports.iter().any(|e| e == export),
            "exports {export}: {exports:?}"
        );
    }
}
