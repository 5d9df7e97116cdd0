//! The deployment examples in `envoy/` cannot rot: the plugin configuration
//! embedded in `envoy/envoy.yaml`, in every `WasmPlugin` of
//! `envoy/istio/wasmplugin.yaml` and in the Envoy Gateway policy of
//! `envoy/gateway/envoyextensionpolicy.yaml` is extracted and loaded into the
//! real `.wasm` (`on_configure` must accept it), and the Envoy, Istio and
//! Envoy Gateway settings around it are checked against what the plugin needs.

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;
use std::path::PathBuf;

/// Envoy's default per-connection buffer limit, which Istio sidecars keep.
const ENVOY_DEFAULT_BUFFER_LIMIT: u64 = 1 << 20;
/// How far one read of Envoy's may overshoot the listener's buffer limit,
/// with margin (its read reservations make it under 16 KiB; see
/// envoy/README.md).
const READ_OVERSHOOT: u64 = 64 << 10;

const TOP_LEVEL: &[&str] = &[
    "mode",
    "hold_bytes",
    "limits",
    "json",
    "content_types",
    "on_other_content_type",
    "on_missing_content_type",
    "on_encoded_body",
    "on_other_charset",
    "on_unreadable_body",
    "hold_headers",
    "case_insensitive_paths",
    "rules",
    "reply",
    "breaker",
];
const RULE: &[&str] = &[
    "name",
    "match",
    "skip",
    "mode",
    "hold_bytes",
    "limits",
    "json",
    "breaker",
];
const MATCH: &[&str] = &[
    "path_prefix",
    "path_exact",
    "path_separated_prefix",
    "methods",
    "authority",
];
const LIMITS: &[&str] = &[
    "max_body_bytes",
    "max_depth",
    "max_array_elements",
    "max_object_entries",
    "max_key_bytes",
    "max_string_bytes",
    "max_number_chars",
];
const JSON: &[&str] = &[
    "duplicate_keys",
    "allow_bom",
    "allow_lone_surrogates",
    "allow_empty_body",
    "numbers",
    "report_only",
    "lines",
];
const REPLY: &[&str] = &["statuses", "detail"];
const BREAKER: &[&str] = &[
    "enabled",
    "consecutive_failures",
    "failure_ratio",
    "min_requests",
    "window_seconds",
    "open_seconds",
    "max_open_seconds",
    "backoff",
    "half_open_probes",
    "scope",
    "max_keys",
    "counts",
];

fn repo_file(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn envoy_yaml() -> Yaml {
    serde_yaml_ng::from_str(&repo_file("envoy/envoy.yaml")).expect("envoy.yaml is valid YAML")
}

/// The documents of a multi-document YAML file of the repository.
fn yaml_docs(rel: &str) -> Vec<Yaml> {
    let text = repo_file(rel);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            <Yaml as serde::Deserialize>::deserialize(d)
                .unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
        })
        .filter(|d| !d.is_null())
        .collect()
}

fn wasm_plugins() -> Vec<Yaml> {
    yaml_docs("envoy/istio/wasmplugin.yaml")
}

/// The Envoy Gateway example: an EnvoyExtensionPolicy, a ClientTrafficPolicy.
fn gateway_docs() -> Vec<Yaml> {
    yaml_docs("envoy/gateway/envoyextensionpolicy.yaml")
}

fn get<'a>(v: &'a Yaml, path: &[&str]) -> &'a Yaml {
    path.iter().fold(v, |v, k| &v[*k])
}

fn as_u64(v: &Yaml, what: &str) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v:?}"))
}

/// The one HTTP connection manager of the sample listener, and the listener.
fn hcm(doc: &Yaml) -> (&Yaml, &Yaml) {
    let listeners = get(doc, &["static_resources", "listeners"])
        .as_sequence()
        .unwrap();
    assert_eq!(listeners.len(), 1);
    let listener = &listeners[0];
    let filters = listener["filter_chains"][0]["filters"]
        .as_sequence()
        .unwrap();
    let hcm = filters
        .iter()
        .find(|f| f["name"].as_str() == Some("envoy.filters.network.http_connection_manager"))
        .expect("an HTTP connection manager");
    (&hcm["typed_config"], listener)
}

/// The plugin configuration (JSON) of envoy.yaml.
fn envoy_plugin_config() -> Json {
    let doc = envoy_yaml();
    let (hcm, _) = hcm(&doc);
    let filters = hcm["http_filters"].as_sequence().unwrap();
    let wasm = filters
        .iter()
        .find(|f| f["name"].as_str() == Some("envoy.filters.http.wasm"))
        .unwrap();
    let cfg = &wasm["typed_config"]["config"]["configuration"];
    assert_eq!(
        cfg["@type"].as_str(),
        Some("type.googleapis.com/google.protobuf.StringValue")
    );
    serde_json::from_str(cfg["value"].as_str().unwrap())
        .expect("envoy.yaml: the plugin configuration is valid JSON")
}

/// The `pluginConfig` of each WasmPlugin, as the JSON Istio hands the plugin.
fn istio_plugin_configs() -> Vec<(String, Json)> {
    wasm_plugins()
        .iter()
        .map(|d| {
            let name = d["metadata"]["name"].as_str().unwrap().to_string();
            let json = serde_json::to_value(&d["spec"]["pluginConfig"]).unwrap();
            (name, json)
        })
        .collect()
}

/// The `config` of each Wasm extension of the EnvoyExtensionPolicy, as the
/// JSON Envoy Gateway hands the plugin.
fn gateway_plugin_configs() -> Vec<(String, Json)> {
    gateway_docs()
        .iter()
        .filter(|d| d["kind"].as_str() == Some("EnvoyExtensionPolicy"))
        .flat_map(|d| d["spec"]["wasm"].as_sequence().cloned().unwrap_or_default())
        .map(|w| {
            let name = format!("envoy gateway {}", w["name"].as_str().unwrap_or("?"));
            (name, serde_json::to_value(&w["config"]).unwrap())
        })
        .collect()
}

fn all_configs() -> Vec<(String, Json)> {
    let mut v = vec![("envoy.yaml".to_string(), envoy_plugin_config())];
    v.extend(istio_plugin_configs());
    v.extend(gateway_plugin_configs());
    v
}

fn keys_within(what: &str, v: &Json, allowed: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object"));
    for k in obj.keys() {
        assert!(allowed.contains(&k.as_str()), "{what}: unknown field {k:?}");
    }
}

/// Largest `hold_bytes` of the top level and every rule (the default is 65536
/// per issue 3's example when omitted; every sample states it explicitly).
/// The buffer a held body may need in Envoy behind a listener whose buffer
/// limit is `listener`: for each policy that holds bodies, its held bytes plus
/// one read of Envoy's (up to the listener's limit and a little more, all
/// appended at once), but never more than the largest body it takes.
fn pause_room_needed(cfg: &Json, listener: u64) -> u64 {
    let top_hold = cfg["hold_bytes"]
        .as_u64()
        .expect("samples state hold_bytes");
    let top_max = cfg["limits"]["max_body_bytes"]
        .as_u64()
        .expect("samples state max_body_bytes");
    let rules = cfg["rules"].as_array().into_iter().flatten();
    let policies = std::iter::once((top_hold, top_max)).chain(
        rules
            .filter(|r| r["skip"].as_bool() != Some(true))
            .map(|r| {
                let hold = r["hold_bytes"].as_u64().unwrap_or(top_hold);
                let max = r["limits"]["max_body_bytes"].as_u64().unwrap_or(top_max);
                (hold, max)
            }),
    );
    policies
        .filter(|&(hold, _)| hold > 0)
        .map(|(hold, max)| max.min(hold + listener + READ_OVERSHOOT))
        .max()
        .unwrap_or(0)
}

#[test]
fn embedded_configs_use_only_documented_fields() {
    for (name, cfg) in all_configs() {
        keys_within(&name, &cfg, TOP_LEVEL);
        if let Some(l) = cfg.get("limits") {
            keys_within(&format!("{name}: limits"), l, LIMITS);
        }
        if let Some(j) = cfg.get("json") {
            keys_within(&format!("{name}: json"), j, JSON);
        }
        if let Some(r) = cfg.get("reply") {
            keys_within(&format!("{name}: reply"), r, REPLY);
        }
        if let Some(b) = cfg.get("breaker") {
            keys_within(&format!("{name}: breaker"), b, BREAKER);
        }
        for (i, rule) in cfg["rules"].as_array().into_iter().flatten().enumerate() {
            let what = format!("{name}: rules[{i}]");
            keys_within(&what, rule, RULE);
            keys_within(&format!("{what}.match"), &rule["match"], MATCH);
            assert!(
                !rule["match"].as_object().unwrap().is_empty(),
                "{what}: empty match"
            );
            if let Some(l) = rule.get("limits") {
                keys_within(&format!("{what}.limits"), l, LIMITS);
            }
        }
    }
}

/// `hold_headers` makes the plugin pause in the headers callback, which only
/// works where Envoy allows it (`allow_on_headers_stop_iteration`); anywhere
/// else every held request would stall. Istio's `WasmPlugin` cannot set it.
#[test]
fn no_shipped_config_holds_headers_where_envoy_would_stall() {
    let doc = envoy_yaml();
    let (hcm, _) = hcm(&doc);
    let wasm = hcm["http_filters"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|f| f["name"].as_str() == Some("envoy.filters.http.wasm"))
        .unwrap();
    let allowed = wasm["typed_config"]["config"]["allow_on_headers_stop_iteration"].as_bool();
    if envoy_plugin_config()["hold_headers"] == true {
        assert_eq!(
            allowed,
            Some(true),
            "envoy.yaml: hold_headers without allow_on_headers_stop_iteration"
        );
    }
    for (name, cfg) in istio_plugin_configs()
        .into_iter()
        .chain(gateway_plugin_configs())
    {
        assert_ne!(
            cfg["hold_headers"], true,
            "{name}: neither Istio nor Envoy Gateway can allow hold_headers"
        );
    }
}

/// A Kubernetes quantity of bytes (`1Mi`, `128Ki`, `64k`, `131072`).
fn quantity_bytes(v: &Yaml) -> u64 {
    if let Some(n) = v.as_u64() {
        return n;
    }
    let text = v
        .as_str()
        .unwrap_or_else(|| panic!("not a quantity: {v:?}"));
    let at = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(at);
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => panic!("unit {other:?} of {text} is not one a buffer limit needs"),
    };
    digits.parse::<u64>().expect("digits") * scale
}

#[test]
fn envoy_gateway_policies_are_wired_as_documented() {
    let docs = gateway_docs();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["EnvoyExtensionPolicy", "ClientTrafficPolicy"]);
    for d in &docs {
        assert_eq!(
            d["apiVersion"].as_str(),
            Some("gateway.envoyproxy.io/v1alpha1")
        );
        let target = &d["spec"]["targetRefs"][0];
        assert_eq!(target["group"].as_str(), Some("gateway.networking.k8s.io"));
        assert!(target["name"].as_str().is_some());
    }
    let wasm = &docs[0]["spec"]["wasm"][0];
    assert_eq!(wasm["rootID"].as_str(), Some("json_sanitizer"));
    assert_eq!(wasm["failOpen"].as_bool(), Some(false), "fail closed");
    assert_eq!(wasm["code"]["type"].as_str(), Some("Image"));
    let url = wasm["code"]["image"]["url"].as_str().unwrap();
    let (_, digest) = url
        .split_once("@sha256:")
        .expect("the image is pinned by digest");
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{url}"
    );
    // The connection buffer holds what the plugin may pause on.
    assert_eq!(
        docs[1]["spec"]["targetRefs"][0]["kind"].as_str(),
        Some("Gateway")
    );
    let limit = quantity_bytes(&docs[1]["spec"]["connection"]["bufferLimit"]);
    for (name, cfg) in gateway_plugin_configs() {
        let needed = pause_room_needed(&cfg, limit);
        assert!(limit >= needed, "{name}: bufferLimit {limit} < {needed}");
    }
}

#[test]
fn envoy_yaml_is_wired_as_documented() {
    let doc = envoy_yaml();
    let addr = |v: &Yaml| {
        let s = &v["address"]["socket_address"];
        format!(
            "{}:{}",
            s["address"].as_str().unwrap(),
            as_u64(&s["port_value"], "port")
        )
    };
    assert_eq!(addr(&doc["admin"]), "127.0.0.1:9901");
    let (hcm, listener) = hcm(&doc);
    // One resolved path for rules, router and upstream.
    assert_eq!(hcm["normalize_path"].as_bool(), Some(true));
    assert_eq!(hcm["merge_slashes"].as_bool(), Some(true));
    // The client's address is the connection's (the source_ip scope).
    assert_eq!(hcm["use_remote_address"].as_bool(), Some(true));
    // One client cannot keep more requests in inspection than this.
    let streams = &hcm["http2_protocol_options"]["max_concurrent_streams"];
    assert!(streams.as_u64().is_some_and(|n| (1..=1000).contains(&n)));
    assert_eq!(addr(listener), "127.0.0.1:10000");

    let filters: Vec<&str> = hcm["http_filters"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        filters,
        ["envoy.filters.http.wasm", "envoy.filters.http.router"],
        "the wasm filter must run before the router"
    );
    let wasm = &hcm["http_filters"][0]["typed_config"];
    assert_eq!(
        wasm["@type"].as_str(),
        Some("type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm")
    );
    let config = &wasm["config"];
    assert_eq!(config["root_id"].as_str(), Some("json_sanitizer"));
    assert_eq!(config["failure_policy"].as_str(), Some("FAIL_CLOSED"));
    let vm = &config["vm_config"];
    assert!(
        !vm["vm_id"].as_str().unwrap_or("").is_empty(),
        "vm_id is named"
    );
    assert_eq!(vm["runtime"].as_str(), Some("envoy.wasm.runtime.v8"));
    let file = vm["code"]["local"]["filename"].as_str().unwrap();
    assert!(file.ends_with("json_sanitizer.wasm"), "{file}");

    // Upstream cluster.
    let cluster = &get(&doc, &["static_resources", "clusters"])[0];
    let ep = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
    assert_eq!(addr(ep), "127.0.0.1:8080");
    let route = &hcm["route_config"]["virtual_hosts"][0]["routes"][0];
    assert_eq!(route["route"]["cluster"], cluster["name"]);

    // Buffer limits hold everything the plugin may pause on: a held body
    // may grow to the larger of the two limits.
    let cfg = envoy_plugin_config();
    let listener_limit = as_u64(
        &listener["per_connection_buffer_limit_bytes"],
        "per_connection_buffer_limit_bytes",
    );
    let route_limit = as_u64(
        &route["per_request_buffer_limit_bytes"],
        "per_request_buffer_limit_bytes",
    );
    let needed = pause_room_needed(&cfg, listener_limit);
    assert!(
        listener_limit.max(route_limit) >= needed,
        "buffer limits {listener_limit} and {route_limit} < {needed}"
    );
}

#[test]
fn wasm_plugins_are_wired_as_documented() {
    let docs = wasm_plugins();
    assert_eq!(docs.len(), 3);
    for d in &docs {
        assert_eq!(
            d["apiVersion"].as_str(),
            Some("extensions.istio.io/v1alpha1")
        );
        assert_eq!(d["kind"].as_str(), Some("WasmPlugin"));
        let spec = &d["spec"];
        // Sidecars by label, or (ambient) a waypoint by reference: one of them.
        let by_label = spec["selector"]["matchLabels"].is_mapping();
        let by_reference = spec["targetRefs"].is_sequence();
        assert!(by_label != by_reference, "selector or targetRefs");
        let url = spec["url"].as_str().unwrap();
        assert!(url.starts_with("oci://"), "{url}");
        let sha = spec["sha256"].as_str().unwrap();
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "sha256 must be 64 hex digits: {sha}"
        );
        if let Some((_, pinned)) = url.split_once("@sha256:") {
            assert_eq!(pinned, sha, "url digest and sha256 must agree");
        }
        assert!(matches!(
            spec["imagePullPolicy"].as_str(),
            Some("IfNotPresent" | "Always")
        ));
        assert!(matches!(
            spec["phase"].as_str(),
            Some("AUTHN" | "AUTHZ" | "STATS")
        ));
        assert_eq!(spec["failStrategy"].as_str(), Some("FAIL_CLOSE"));
        assert_eq!(spec["pluginName"].as_str(), Some("json_sanitizer"));
        assert!(spec["pluginConfig"].is_mapping());
        let cfg = serde_json::to_value(&spec["pluginConfig"]).unwrap();
        let needed = pause_room_needed(&cfg, ENVOY_DEFAULT_BUFFER_LIMIT);
        assert!(needed <= ENVOY_DEFAULT_BUFFER_LIMIT, "{needed}");
    }
    // The per-route example narrows with `match` and routes with `rules`.
    let per_route = &docs[1]["spec"];
    let m = per_route["match"].as_sequence().expect("a match list");
    assert_eq!(m[0]["mode"].as_str(), Some("SERVER"));
    assert!(m[0]["ports"][0]["number"].as_u64().is_some());
    assert!(
        per_route["pluginConfig"]["rules"]
            .as_sequence()
            .unwrap()
            .len()
            >= 2
    );
    // Ambient mode: the waypoint, a Gateway API Gateway, for everything it
    // serves (no `match`).
    let waypoint = &docs[2]["spec"];
    let target = &waypoint["targetRefs"][0];
    assert_eq!(
        (target["kind"].as_str(), target["group"].as_str()),
        (Some("Gateway"), Some("gateway.networking.k8s.io"))
    );
    assert!(waypoint["match"].is_null());
}

#[test]
fn embedded_configs_pass_the_plugins_own_validation() {
    // The same parser `on_configure` runs, natively: fast and precise errors.
    for (name, cfg) in all_configs() {
        let text = serde_json::to_vec(&cfg).unwrap();
        match json_sanitizer::policy::config::Config::parse(&text) {
            Ok(config) => assert!(
                config.warnings().is_empty(),
                "{name}: {:?}",
                config.warnings()
            ),
            Err(e) => panic!("{name}: configuration refused: {e}"),
        }
    }
}

#[test]
fn embedded_configs_are_accepted_by_the_plugin() {
    use json_sanitizer_host::{plugin_module, Host, Request};
    let module = plugin_module().expect("building and loading the plugin");
    for (name, cfg) in all_configs() {
        let text = serde_json::to_string(&cfg).unwrap();
        let host = Host::builder(module.clone())
            .config(&text)
            .root_id("json_sanitizer")
            .build()
            .unwrap();
        let mut vm = host
            .start_vm()
            .unwrap_or_else(|e| panic!("{name}: the plugin refused its configuration: {e:#}"));
        // And it enforces it: a body nested far beyond max_depth is refused.
        let body = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let out = vm
            .send(
                &Request::post("/api/orders")
                    .content_type("application/json")
                    .body(body)
                    .with_content_length(),
            )
            .unwrap();
        let reply = out
            .local_reply
            .unwrap_or_else(|| panic!("{name}: a too-deep body was not rejected"));
        assert_eq!(reply.status, 400, "{name}");
        let problem: Json = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(problem["violation"], "too_deep", "{name}");
    }
}

/// The sample access log says why the plugin refused a request: whatever a
/// refusal through the real `.wasm` leaves for the access log (response code
/// details, and every filter-state key the plugin set) is in `envoy.yaml`'s
/// format, and the Istio format in `envoy/README.md` logs the same keys.
#[test]
fn the_sample_access_log_prints_why_the_plugin_refused() {
    use json_sanitizer_host::{plugin_module, Host, Request};
    let doc = envoy_yaml();
    let (hcm, _) = hcm(&doc);
    let format = get(
        &hcm["access_log"][0]["typed_config"],
        &["log_format", "text_format_source", "inline_string"],
    )
    .as_str()
    .expect("a text access log format");
    assert!(format.contains("%RESPONSE_CODE_DETAILS%"), "{format}");

    let cfg = serde_json::to_string(&envoy_plugin_config()).unwrap();
    let host = Host::builder(plugin_module().expect("the plugin"))
        .config(&cfg)
        .build()
        .unwrap();
    let mut vm = host.start_vm().unwrap();
    let refused = vm
        .send(
            &Request::post("/api/orders")
                .content_type("application/json")
                .body("[1,]"),
        )
        .unwrap();
    assert_eq!(
        refused.local_reply.as_ref().map(|r| r.details.as_str()),
        Some("json_sanitizer_syntax_error")
    );
    assert!(
        !refused.filter_state.is_empty(),
        "the refusal left no trace"
    );
    let istio = repo_file("envoy/README.md");
    for (key, _) in &refused.filter_state {
        let field = format!("%FILTER_STATE({key}:PLAIN)%");
        assert!(format.contains(&field), "{field} not in {format}");
        assert!(istio.contains(&field), "{field} not in envoy/README.md");
    }
}
