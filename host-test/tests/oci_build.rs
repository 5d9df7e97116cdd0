//! `oci build` without a registry: reproducibility, the image formats Istio
//! reads, the layout and tarball, and refusal of corrupt layouts.

mod oci_cli;
use json_sanitizer_host::oci::image::{
    self, ImageMeta, Variant, COMPAT_LAYER_MEDIA_TYPE, IMAGE_CONFIG_MEDIA_TYPE, VARIANT_ANNOTATION,
    WASM_CONFIG_MEDIA_TYPE, WASM_CONTENT_MEDIA_TYPE,
};
use json_sanitizer_host::oci::layout::Layout;
use json_sanitizer_host::oci::package::{build_layout, BuildOptions};
use oci_cli::{layer_media_types, parses, run_cli};
use std::path::{Path, PathBuf};

/// Image metadata at version 1.2.3, dated or not.
fn meta(created: Option<u64>) -> ImageMeta {
    ImageMeta {
        version: "1.2.3".into(),
        created,
    }
}

/// A small but valid core module (magic, version, one custom section), so
/// these tests do not need the plugin build.
fn module() -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    let name = b"json-sanitizer-test";
    let payload: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    m.push(0); // custom section
    let len = 1 + name.len() + payload.len();
    leb128(&mut m, len as u32);
    m.push(name.len() as u8);
    m.extend_from_slice(name);
    m.extend_from_slice(&payload);
    m
}

fn leb128(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
}

fn write_module(dir: &Path) -> PathBuf {
    let p = dir.join("plugin.wasm");
    std::fs::write(&p, module()).unwrap();
    p
}

fn opts(plugin: &Path, out: PathBuf, tar: Option<PathBuf>) -> BuildOptions {
    BuildOptions {
        plugin: plugin.to_path_buf(),
        out,
        tar,
        variants: vec![Variant::Compat, Variant::Wasm],
        tag: "1.2.3".into(),
    }
}

#[test]
fn building_twice_gives_identical_digests_and_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let plugin = write_module(tmp.path());
    let a = build_layout(&opts(
        &plugin,
        tmp.path().join("a"),
        Some(tmp.path().join("a.tar")),
    ))
    .unwrap();
    let b = build_layout(&opts(
        &plugin,
        tmp.path().join("b"),
        Some(tmp.path().join("b.tar")),
    ))
    .unwrap();
    for ((na, ia), (nb, ib)) in a.images.iter().zip(&b.images) {
        assert_eq!(na, nb);
        assert_eq!(ia.manifest.digest, ib.manifest.digest, "{na}");
        assert_eq!(ia.manifest.bytes, ib.manifest.bytes);
        assert_eq!(ia.config.bytes, ib.config.bytes);
        assert_eq!(ia.layers, ib.layers);
    }
    assert_eq!(a.tarball.as_ref().unwrap().1, b.tarball.as_ref().unwrap().1);
    assert_eq!(
        std::fs::read(tmp.path().join("a.tar")).unwrap(),
        std::fs::read(tmp.path().join("b.tar")).unwrap()
    );
    assert_eq!(
        std::fs::read(tmp.path().join("a/index.json")).unwrap(),
        std::fs::read(tmp.path().join("b/index.json")).unwrap()
    );
}

#[test]
fn a_different_module_or_timestamp_changes_the_digest() {
    let wasm = module();
    let base = image::build(Variant::Compat, &wasm, &meta(None)).unwrap();
    let dated = image::build(Variant::Compat, &wasm, &meta(Some(1_700_000_000))).unwrap();
    let dated2 = image::build(Variant::Compat, &wasm, &meta(Some(1_700_000_000))).unwrap();
    assert_ne!(base.manifest.digest, dated.manifest.digest);
    assert_eq!(dated.manifest.digest, dated2.manifest.digest);
    let mut other = wasm.clone();
    *other.last_mut().unwrap() ^= 1;
    let changed = image::build(Variant::Compat, &other, &meta(None)).unwrap();
    assert_ne!(base.manifest.digest, changed.manifest.digest);
}

#[test]
fn compat_image_matches_what_istio_reads() {
    let wasm = module();
    let img = image::build(Variant::Compat, &wasm, &meta(None)).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&img.manifest.bytes).unwrap();
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["config"]["mediaType"], IMAGE_CONFIG_MEDIA_TYPE);
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    assert_eq!(m["layers"][0]["mediaType"], COMPAT_LAYER_MEDIA_TYPE);
    assert_eq!(m["annotations"][VARIANT_ANNOTATION], "compat");

    // A valid OCI image config whose diff_id is the uncompressed layer.
    let c: serde_json::Value = serde_json::from_slice(&img.config.bytes).unwrap();
    assert_eq!(c["architecture"], "wasm");
    assert_eq!(c["os"], "wasip1");
    assert_eq!(c["rootfs"]["type"], "layers");
    let mut tar_bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&img.layers[0].bytes[..]),
        &mut tar_bytes,
    )
    .unwrap();
    assert_eq!(
        c["rootfs"]["diff_ids"][0],
        json_sanitizer_host::oci::digest::sha256_digest(&tar_bytes)
    );

    // Gzip header: no name, mtime 0.
    assert_eq!(&img.layers[0].bytes[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);

    // The tar holds exactly plugin.wasm at its root, owned by root, mode 0644, mtime 0.
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let entries: Vec<_> = archive.entries().unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(entries.len(), 1);
    let h = entries[0].header();
    assert_eq!(entries[0].path().unwrap().to_str(), Some("plugin.wasm"));
    assert_eq!(h.uid().unwrap(), 0);
    assert_eq!(h.gid().unwrap(), 0);
    assert_eq!(h.mode().unwrap(), 0o644);
    assert_eq!(h.mtime().unwrap(), 0);
    assert_eq!(h.size().unwrap(), wasm.len() as u64);
}

#[test]
fn wasm_variant_has_the_two_module_layers() {
    let wasm = module();
    let img = image::build(Variant::Wasm, &wasm, &meta(None)).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&img.manifest.bytes).unwrap();
    let types = layer_media_types(&img.manifest.bytes);
    assert_eq!(types, [WASM_CONFIG_MEDIA_TYPE, WASM_CONTENT_MEDIA_TYPE]);
    assert_eq!(m["config"]["mediaType"], WASM_CONFIG_MEDIA_TYPE);
    assert_eq!(img.layers[1].bytes, wasm);
    let rc: serde_json::Value = serde_json::from_slice(&img.config.bytes).unwrap();
    assert_eq!(rc["type"], "envoy_proxy");
    assert_eq!(rc["config"]["root_ids"][0], "json_sanitizer");
}

#[test]
fn layout_and_tarball_are_valid_oci_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let plugin = write_module(tmp.path());
    let out = tmp.path().join("layout");
    let report = build_layout(&opts(&plugin, out.clone(), Some(tmp.path().join("l.tar")))).unwrap();

    let layout = Layout::open(&out).unwrap();
    let names: Vec<_> = layout.entries().into_iter().map(|e| e.name).collect();
    assert_eq!(names, [Some("1.2.3".into()), Some("1.2.3-wasm".into())]);
    let compat = layout.select(None, None).unwrap();
    assert_eq!(compat.variant, Variant::Compat);
    assert_eq!(compat.manifest.digest, report.images[0].1.manifest.digest);
    let wasm = layout.select(None, Some(Variant::Wasm)).unwrap();
    assert_eq!(wasm.manifest.digest, report.images[1].1.manifest.digest);
    let by_name = layout.select(Some("1.2.3-wasm"), None).unwrap();
    assert_eq!(by_name.manifest.digest, wasm.manifest.digest);
    assert!(layout.select(Some("nope"), None).is_err());

    // The tarball holds the same files, sorted, with fixed metadata.
    let tar_bytes = std::fs::read(tmp.path().join("l.tar")).unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut paths = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().mtime().unwrap(), 0);
        assert_eq!(e.header().uid().unwrap(), 0);
        let p = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        if e.header().entry_type().is_file() {
            let mut content = Vec::new();
            let mut e = e;
            std::io::Read::read_to_end(&mut e, &mut content).unwrap();
            assert_eq!(content, std::fs::read(out.join(&p)).unwrap(), "{p}");
        }
        paths.push(p);
    }
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert!(paths.contains(&"oci-layout".to_string()));
    assert!(paths.contains(&"index.json".to_string()));

    // Rebuilding into the same directory replaces the layout cleanly.
    build_layout(&opts(&plugin, out.clone(), None)).unwrap();
    Layout::open(&out).unwrap().select(None, None).unwrap();
}

#[test]
fn corrupt_layouts_are_refused_not_pushed() {
    let tmp = tempfile::tempdir().unwrap();
    let plugin = write_module(tmp.path());
    let out = tmp.path().join("layout");
    let report = build_layout(&opts(&plugin, out.clone(), None)).unwrap();
    let layer = &report.images[0].1.layers[0];
    let blob = out
        .join("blobs/sha256")
        .join(layer.digest.trim_start_matches("sha256:"));

    // One flipped byte in a layer.
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let err = Layout::open(&out).unwrap().select(None, None).unwrap_err();
    assert!(format!("{err:#}").contains("mismatch"), "{err:#}");

    // A missing blob.
    std::fs::remove_file(&blob).unwrap();
    let err = Layout::open(&out).unwrap().select(None, None).unwrap_err();
    assert!(format!("{err:#}").contains("cannot open"), "{err:#}");

    // A broken index, a missing marker, a path-traversal digest.
    std::fs::write(out.join("index.json"), b"{not json").unwrap();
    assert!(Layout::open(&out).is_err());
    std::fs::write(
        out.join("index.json"),
        br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../../etc/passwd","size":10}]}"#,
    )
    .unwrap();
    assert!(Layout::open(&out)
        .and_then(|l| l.select(None, None))
        .is_err());
    std::fs::remove_file(out.join("oci-layout")).unwrap();
    assert!(Layout::open(&out).is_err());
    assert!(Layout::open(&tmp.path().join("does-not-exist")).is_err());
}

#[test]
fn refuses_bad_inputs_with_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let not_wasm = tmp.path().join("x.wasm");
    std::fs::write(&not_wasm, b"hello").unwrap();
    assert!(build_layout(&opts(&not_wasm, tmp.path().join("o1"), None)).is_err());
    // A tarball path that is a directory, refused before the layout is written.
    let out = tmp.path().join("with-tar");
    let e = build_layout(&opts(
        &write_module(tmp.path()),
        out.clone(),
        Some(tmp.path().to_path_buf()),
    ))
    .unwrap_err();
    assert!(format!("{e:#}").contains("is a directory"), "{e:#}");
    assert!(!out.exists());
    // Tags a registry would refuse, refused before anything is written.
    let plugin = write_module(tmp.path());
    for tag in ["", "bad tag", "../x", "-lead", ".lead", &"x".repeat(124)] {
        let out = tmp.path().join("tagged");
        let mut o = opts(&plugin, out.clone(), None);
        o.tag = tag.to_string();
        let e = build_layout(&o).unwrap_err();
        assert!(
            format!("{e:#}").contains("is not an image tag"),
            "{tag:?}: {e:#}"
        );
        assert!(!out.exists(), "{tag:?}");
    }
    for tag in ["0.1.0", "v1_2-rc.3", "_x", &"x".repeat(123)] {
        let mut o = opts(&plugin, tmp.path().join(format!("ok{}", tag.len())), None);
        o.tag = tag.to_string();
        build_layout(&o).unwrap_or_else(|e| panic!("{tag:?}: {e:#}"));
    }
    assert!(build_layout(&opts(
        &tmp.path().join("missing.wasm"),
        tmp.path().join("o2"),
        None
    ))
    .is_err());
    // Never scatter blobs into a directory that is not a layout.
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"keep me").unwrap();
    let plugin = write_module(tmp.path());
    assert!(build_layout(&opts(&plugin, busy.clone(), None)).is_err());
    assert!(!busy.join("blobs").exists());
}

#[test]
fn cli_build_and_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let plugin = write_module(tmp.path());
    let out = tmp.path().join("cli");
    let tarball = tmp.path().join("cli.tar");
    let code = run_cli(&[
        "oci",
        "build",
        "--plugin",
        plugin.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--tar",
        tarball.to_str().unwrap(),
        "--variant",
        "both",
        "--tag",
        "9.9.9",
    ])
    .unwrap();
    assert_eq!(code, 0);
    assert!(tarball.is_file());
    assert_eq!(
        run_cli(&["oci", "inspect", out.to_str().unwrap()]).unwrap(),
        0
    );
    assert!(run_cli(&["oci", "inspect", tmp.path().to_str().unwrap()]).is_err());
    assert!(run_cli(&["oci", "build"]).is_err(), "--out is required");
}

/// The release plugin must not depend on where it was built: the digest an
/// Istio `WasmPlugin` pins has to come out the same from CI and from a
/// laptop. Cargo's registry path (in the panic locations of dependencies)
/// and the checkout's path are the two machine-specific strings a build
/// could embed.
#[test]
fn the_built_plugin_embeds_no_path_of_this_machine() {
    // A `RUSTFLAGS` of the caller's replaces the build's path rewriting
    // (documented in the README), so there is nothing to check then.
    for flags in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"] {
        if std::env::var_os(flags).is_some_and(|f| !f.is_empty()) {
            eprintln!("skipped: {flags} is set and replaces the path rewriting");
            return;
        }
    }
    let plugin = json_sanitizer_host::ensure_plugin().expect("building the plugin");
    let bytes = std::fs::read(&plugin).unwrap();
    let contains = |needle: &Path| {
        let needle = needle.to_str().unwrap().as_bytes();
        bytes.windows(needle.len()).any(|w| w == needle)
    };
    let home = json_sanitizer_host::engine::cargo_home().expect("a cargo home");
    assert!(
        !contains(&home),
        "{} is in {}",
        home.display(),
        plugin.display()
    );
    let root = json_sanitizer_host::engine::workspace_root();
    assert!(
        !contains(&root),
        "{} is in {}",
        root.display(),
        plugin.display()
    );
}

/// Every `oci` command the README, the deployment notes and the justfile
/// tell people to run is one the binary accepts, placeholders filled in.
#[test]
fn documented_oci_commands_parse() {
    let root = json_sanitizer_host::engine::workspace_root();
    let mut found = 0;
    for file in ["README.md", "envoy/README.md", "justfile"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for line in text.lines() {
            let Some((_, command)) = line.split_once("json-sanitizer-host -- oci ") else {
                continue;
            };
            let command = command
                .replace("{{wasm}}", "target/plugin.wasm")
                .replace("<hex>", &"0".repeat(64));
            let mut args = vec!["oci"];
            args.extend(command.split_whitespace());
            if let Err(e) = parses(&args) {
                panic!("{file}: `{line}` does not parse: {e}");
            }
            found += 1;
        }
    }
    assert!(found >= 7, "the documented commands were found ({found})");
}
