//! Every example configuration in `examples/` is a valid configuration,
//! and one the plugin has no warning about.
//! (The harness suite also loads each into the real `.wasm`.)

use json_sanitizer::policy::config::Config;
use std::path::Path;

#[test]
fn every_example_configuration_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let bytes = std::fs::read(&path).unwrap();
            let config =
                Config::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // And loads without a warning.
            assert_eq!(
                config.warnings(),
                Vec::<String>::new(),
                "{}",
                path.display()
            );
            seen.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "default.json",
            "per-route.json",
            "report-only.json",
            "strict-api.json"
        ]
    );
}
