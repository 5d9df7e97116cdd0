# Routine tasks. `just --list` shows them. Every recipe is plain cargo
# underneath, so the README's two commands work without `just` installed.

wasm := "target/wasm32-wasip1/wasm/json_sanitizer.wasm"

# Build the release plugin (.wasm) for Envoy/Istio. The same bytes on every
# machine: cargo's home in the dependencies' source paths becomes /cargo, as
# in the build the host and the tests make (engine::remap_cargo_home_config).
build:
    rustup target add wasm32-wasip1
    cargo build --profile wasm --target wasm32-wasip1 -p json-sanitizer \
        --config "target.wasm32-wasip1.rustflags=[\"--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo\"]"
    @ls -l {{wasm}}

# The whole test suite (builds the plugin itself when needed).
test:
    cargo test --workspace

# Formatting and clippy, native and wasm32, warnings as errors (the fuzz
# targets too: they are not in the workspace, but they must keep compiling).
lint:
    cargo fmt --all --check
    cargo fmt --manifest-path plugin/fuzz/Cargo.toml --check
    cargo clippy --workspace --all-targets -- -D warnings
    rustup target add wasm32-wasip1
    cargo clippy --target wasm32-wasip1 -p json-sanitizer -- -D warnings
    RUSTFLAGS="-C target-feature=-simd128" cargo clippy --target wasm32-wasip1 -p json-sanitizer --target-dir target/nosimd -- -D warnings
    cargo clippy --manifest-path plugin/fuzz/Cargo.toml --target-dir target/fuzz-lint --all-targets -- -D warnings

# `inspector` checks verdicts against chunking, reuse and serde_json; `filter`
# the request cycle against a host whose answers are partly hostile. Needs a
# nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`), which neither
# the README's commands nor CI use. New inputs go to plugin/fuzz/corpus/TARGET,
# failing ones to plugin/fuzz/artifacts/TARGET.
# Coverage-guided fuzzing (libFuzzer) of TARGET for MINUTES.
fuzz target="inspector" minutes="10":
    mkdir -p plugin/fuzz/corpus/{{target}}
    cargo +nightly fuzz run --fuzz-dir plugin/fuzz -O {{target}} plugin/fuzz/corpus/{{target}} examples/requests -- \
        -dict=plugin/fuzz/json.dict -max_len=4096 -max_total_time=$(({{minutes}} * 60))

# Criterion benches (inspector natively, then through the wasm) with serde_json baselines.
bench:
    cargo bench -p json-sanitizer --bench inspector
    cargo bench -p json-sanitizer-host --bench wasm

# Native inspector vs serde_json in alternating rounds (steadier ratios on a shared machine).
bench-interleaved:
    cargo run --release -p json-sanitizer --example interleaved

# The CLI's quick bench table (MB/s, ratios, µs per request, guest memory).
bench-table:
    cargo run --release -p json-sanitizer-host -- bench

# The release plugin in V8 (Envoy's and Istio's runtime) under Node.js, against serde_json in V8 and natively.
bench-v8:
    cargo run --release -p json-sanitizer-host --example v8_bench

# The demo: example configurations against example requests.
demo:
    cargo run --release -p json-sanitizer-host -- demo

# Release artefact: the .wasm with its size and sha256, and, when binaryen's wasm-opt is
# installed, a smaller copy (wasm-opt -Oz: about 14% smaller, 1-3% more instructions; see
# docs/PERFORMANCE.md). Either works; the tests and benchmarks use the first.
release: build
    @sha256sum {{wasm}}
    @stat -c '%s bytes' {{wasm}}
    @if command -v wasm-opt >/dev/null; then \
        wasm-opt -Oz --enable-simd --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals -o target/json_sanitizer.small.wasm {{wasm}} && \
        sha256sum target/json_sanitizer.small.wasm && stat -c '%s bytes (wasm-opt -Oz)' target/json_sanitizer.small.wasm; \
    else echo "wasm-opt not installed (apt-get install binaryen): no smaller copy"; fi

# OCI image (compat variant) as a layout directory and a tarball under target/oci.
oci: build
    cargo run --release -p json-sanitizer-host -- oci build --plugin {{wasm}} --out target/oci/layout --tar target/oci/json-sanitizer.tar

# What CI runs.
ci:
    bash .ci/run

clean:
    cargo clean
