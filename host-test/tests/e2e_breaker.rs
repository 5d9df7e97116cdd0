//! The circuit breaker end to end: state in the harness's shared data,
//! time from its manual clock, several worker VMs on threads.

mod plugin;
use json_sanitizer::policy::breaker::{decode, BreakerConfig, State};
use json_sanitizer_host::{Clock, Host, Request, SharedData, Vm};
use plugin::{counter, post, try_host, try_host_with};
use std::time::Duration;

fn start(config: &str) -> (Host, Vm) {
    try_host(config).unwrap_or_else(|e| panic!("{e:#}"))
}

fn bad() -> Request {
    post("[1,]")
}

fn good() -> Request {
    post("[1]")
}

const CONSECUTIVE: &str = r#"{"breaker":{"enabled":true,"consecutive_failures":3,"open_seconds":30,"backoff":2.0,"max_open_seconds":100}}"#;

#[test]
fn consecutive_failures_trip_it_and_it_sheds_with_retry_after_without_reading_bodies() {
    let (h, mut vm) = start(CONSECUTIVE);
    for _ in 0..2 {
        assert_eq!(vm.send(&bad()).unwrap().status(), Some(400));
    }
    assert_eq!(
        vm.send(&good()).unwrap().status(),
        None,
        "a success resets the run"
    );
    for _ in 0..2 {
        vm.send(&bad()).unwrap();
    }
    assert_eq!(counter(&h, "breaker.opened"), 0, "two in a row do not trip");
    let o = vm.send(&bad()).unwrap();
    assert_eq!(o.status(), Some(400));
    assert!(
        o.logged("closed -> open") && o.logged("reason=consecutive"),
        "{:?}",
        o.logs
    );
    assert_eq!(counter(&h, "breaker.opened"), 1);

    h.clock().advance(Duration::from_millis(10_500));
    let o = vm.send(&good().capture_forwarded()).unwrap();
    let reply = o.reply().unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("20"), "19.5 s rounds up");
    assert_eq!(o.problem().unwrap()["violation"], "breaker_open");
    assert_eq!(reply.details, "json_sanitizer_breaker_open");
    assert_eq!(
        o.filter_state("wasm.json_sanitizer.violation").as_deref(),
        Some("breaker_open")
    );
    assert_eq!(
        (o.body_bytes_read, o.forwarded_bytes, o.headers_forwarded),
        (0, 0, false)
    );
    assert_eq!(counter(&h, "breaker.rejected"), 1);
    assert_eq!(counter(&h, "rejected.breaker_open"), 1);
    // Requests the breaker does not guard still pass: no body, other types.
    assert_eq!(vm.send(&Request::get("/health")).unwrap().status(), None);
}

/// Istio sets no `vm_id`, so every plugin in a proxy shares one shared-data
/// map: two plugins (two `WasmPlugin`s with the same code and configuration)
/// must keep their breakers apart by name, and one plugin's old and new
/// configuration by the configuration, while two VMs of one plugin share
/// theirs. A plugin with a `vm_id` of its own has a map of its own.
#[test]
fn plugins_sharing_one_map_keep_their_breakers_apart_by_name_and_configuration() {
    let shared = SharedData::new();
    let clock = Clock::manual_at_ms(1_800_000_000_000);
    // No vm_id: the default, as in Istio.
    let start_with = |name: &str, config: &str| {
        try_host_with(config, |b| {
            b.clock(clock.clone())
                .shared_data(shared.clone())
                .plugin_name(name)
        })
        .unwrap()
    };
    let start = |name: &str| start_with(name, CONSECUTIVE);
    let reconfigured = CONSECUTIVE.replacen('{', r#"{"reply":{"detail":false},"#, 1);
    let (_orders, mut orders) = start("orders-guard");
    let (_twin, mut twin) = start("orders-guard");
    let (_catalog, mut catalog) = start("catalog-guard");
    for _ in 0..3 {
        assert_eq!(orders.send(&bad()).unwrap().status(), Some(400));
    }
    assert_eq!(
        twin.send(&good()).unwrap().status(),
        Some(503),
        "same plugin: shared"
    );
    assert_eq!(
        catalog.send(&good()).unwrap().status(),
        None,
        "other plugin: its own"
    );
    let (_next, mut next) = start_with("orders-guard", &reconfigured);
    assert_eq!(
        next.send(&good()).unwrap().status(),
        None,
        "other configuration: its own"
    );
    // One breaker each: the plugin (both VMs), the other plugin, the other
    // configuration.
    assert_eq!(shared.len(), 3, "{:?}", shared.keys());
    // The same plugin and configuration under another `vm_id` (Envoy's
    // `vm_config.vm_id`) has a map of its own, as in Envoy.
    let (_apart, mut apart) = try_host_with(CONSECUTIVE, |b| {
        b.clock(clock.clone())
            .shared_data(shared.clone())
            .plugin_name("orders-guard")
            .vm_id("orders-vm")
    })
    .unwrap();
    assert_eq!(
        apart.send(&good()).unwrap().status(),
        None,
        "other vm_id: its own map"
    );
    assert_eq!(twin.send(&good()).unwrap().status(), Some(503));
}

#[test]
fn half_open_probes_close_it_or_reopen_it_with_backoff() {
    let (h, mut vm) = start(CONSECUTIVE);
    for _ in 0..3 {
        vm.send(&bad()).unwrap();
    }
    // Failing probe after 30 s: reopened for 60 s.
    h.clock().advance(Duration::from_secs(30));
    let o = vm.send(&bad()).unwrap();
    assert_eq!(o.status(), Some(400), "the probe is inspected");
    assert_eq!(counter(&h, "breaker.probes"), 1);
    assert_eq!(counter(&h, "breaker.reopened"), 1);
    let o = vm.send(&good()).unwrap();
    assert_eq!(o.reply().unwrap().header("retry-after"), Some("60"));
    // Another failure: 120 s capped at 100.
    h.clock().advance(Duration::from_secs(60));
    vm.send(&bad()).unwrap();
    assert_eq!(
        vm.send(&good())
            .unwrap()
            .reply()
            .unwrap()
            .header("retry-after"),
        Some("100")
    );
    // A passing probe closes it; the next requests flow.
    h.clock().advance(Duration::from_secs(100));
    assert_eq!(vm.send(&good()).unwrap().status(), None);
    assert_eq!(counter(&h, "breaker.closed"), 1);
    for _ in 0..2 {
        assert_eq!(vm.send(&bad()).unwrap().status(), Some(400));
    }
    assert_eq!(
        vm.send(&good()).unwrap().status(),
        None,
        "counts were reset on close"
    );
}

#[test]
fn the_failure_ratio_trips_it_over_the_window() {
    let config = r#"{"breaker":{"enabled":true,"consecutive_failures":100,"failure_ratio":0.5,"min_requests":10,"window_seconds":10}}"#;
    let (h, mut vm) = start(config);
    // 5 failures out of 10 is not above 0.5.
    for i in 0..10 {
        vm.send(&if i % 2 == 0 { bad() } else { good() }).unwrap();
    }
    assert_eq!(counter(&h, "breaker.opened"), 0);
    // The 11th, a failure: 6/11 > 0.5.
    let o = vm.send(&bad()).unwrap();
    assert!(o.logged("reason=ratio"), "{:?}", o.logs);
    assert_eq!(counter(&h, "breaker.opened"), 1);
    assert_eq!(vm.send(&good()).unwrap().status(), Some(503));
}

#[test]
fn old_failures_slide_out_of_the_window() {
    let config = r#"{"breaker":{"enabled":true,"consecutive_failures":100,"failure_ratio":0.5,"min_requests":4,"window_seconds":10}}"#;
    let (h, mut vm) = start(config);
    for _ in 0..3 {
        vm.send(&bad()).unwrap();
    }
    h.clock().advance(Duration::from_secs(11));
    // The three failures have aged out: 1 failure + 3 passes is 0.25.
    vm.send(&bad()).unwrap();
    for _ in 0..3 {
        vm.send(&good()).unwrap();
    }
    assert_eq!(counter(&h, "breaker.opened"), 0);
}

#[test]
fn scopes_keep_clients_apart() {
    let config =
        r#"{"breaker":{"enabled":true,"consecutive_failures":2,"scope":{"header":"x-api-key"}}}"#;
    let (_h, mut vm) = start(config);
    for _ in 0..2 {
        vm.send(&bad().header("x-api-key", "tenant-a-secret"))
            .unwrap();
    }
    let shed = vm
        .send(&good().header("x-api-key", "tenant-a-secret"))
        .unwrap();
    assert_eq!(shed.status(), Some(503));
    assert!(shed
        .logs
        .iter()
        .all(|l| !l.message.contains("tenant-a-secret")));
    assert_eq!(
        vm.send(&good().header("x-api-key", "tenant-b"))
            .unwrap()
            .status(),
        None
    );
    assert_eq!(
        vm.send(&good()).unwrap().status(),
        None,
        "no key is a key of its own"
    );

    let config = r#"{"breaker":{"enabled":true,"consecutive_failures":2,"scope":"source_ip"}}"#;
    let (_h, mut vm) = start(config);
    for port in [1000, 1001] {
        vm.send(&bad().property("source.address", format!("10.1.1.1:{port}")))
            .unwrap();
    }
    assert_eq!(
        vm.send(&good().property("source.address", "10.1.1.1:2000"))
            .unwrap()
            .status(),
        Some(503)
    );
    assert_eq!(
        vm.send(&good().property("source.address", "10.1.1.2:1000"))
            .unwrap()
            .status(),
        None
    );

    let config = r#"{"breaker":{"enabled":true,"consecutive_failures":2,"scope":"route"},
        "rules":[{"name":"a","match":{"path_prefix":"/a"}},{"name":"b","match":{"path_prefix":"/b"}}]}"#;
    let (_h, mut vm) = start(config);
    let at = |path: &str, body: &str| {
        Request::post(path)
            .content_type("application/json")
            .body(body)
    };
    for _ in 0..2 {
        vm.send(&at("/a/x", "{")).unwrap();
    }
    assert_eq!(vm.send(&at("/a/x", "1")).unwrap().status(), Some(503));
    assert_eq!(vm.send(&at("/b/x", "1")).unwrap().status(), None);
}

#[test]
fn hostcalls_per_request_in_each_state() {
    let (h, mut vm) = start(CONSECUTIVE);
    let shared = |o: &json_sanitizer_host::Outcome| {
        (
            o.hostcall_count("proxy_get_shared_data"),
            o.hostcall_count("proxy_set_shared_data"),
        )
    };
    let o = vm.send(&good()).unwrap();
    assert_eq!(shared(&o), (1, 1), "closed, pass: one read, one write");
    let o = vm.send(&bad()).unwrap();
    assert_eq!(shared(&o), (1, 1), "closed, fail");
    vm.send(&bad()).unwrap();
    vm.send(&bad()).unwrap();
    let o = vm.send(&good()).unwrap();
    assert_eq!(shared(&o), (1, 0), "open: one read, shed");
    h.clock().advance(Duration::from_secs(30));
    let o = vm.send(&good()).unwrap();
    assert_eq!(shared(&o), (2, 2), "half-open probe");
    let (_, mut plain) = start("{}");
    assert_eq!(
        shared(&plain.send(&good()).unwrap()),
        (0, 0),
        "breaker disabled"
    );
    eprintln!(
        "hostcalls (closed pass): {:?}",
        vm.send(&good()).unwrap().hostcalls
    );
}

/// Reads the breaker slot of the `global` scope from the shared data.
fn global_state(h: &Host) -> State {
    let keys = h.shared_data().keys();
    let key = keys
        .iter()
        .find(|k| k.ends_with(".breaker.0"))
        .expect("breaker key");
    let (value, _) = h.shared_data().get(key).unwrap();
    decode(&value).expect("valid state")
}

/// Starts `WORKERS` VMs of one host and runs `work` on each, all at once,
/// each on its own thread; returns the host and each worker's result.
fn on_workers<T: Send + 'static>(config: &str, work: fn(&mut Vm) -> T) -> (Host, Vec<T>) {
    let (h, first) = start(config);
    let mut vms = vec![first];
    vms.extend(h.start_vms(WORKERS - 1).unwrap());
    let threads: Vec<_> = vms
        .into_iter()
        .map(|mut vm| std::thread::spawn(move || work(&mut vm)))
        .collect();
    let results = threads.into_iter().map(|t| t.join().unwrap()).collect();
    (h, results)
}

const WORKERS: usize = 4;
const PER_WORKER: usize = 1000;

#[test]
fn concurrent_workers_lose_no_update() {
    let config = r#"{"breaker":{"enabled":true,"scope":"global","consecutive_failures":1000000,
        "failure_ratio":1.0,"min_requests":1,"window_seconds":60}}"#;
    // Every worker sends its requests at once: a failure every 4th.
    let (h, _) = on_workers(config, |vm| {
        for i in 0..PER_WORKER {
            let o = vm.send(&if i % 4 == 0 { bad() } else { good() }).unwrap();
            assert!(o.trap.is_none());
        }
    });
    let sent = (WORKERS * PER_WORKER) as u64;
    let exhausted = counter(&h, "breaker.cas_exhausted");
    let cfg: BreakerConfig = serde_json::from_str(r#"{"window_seconds":60}"#).unwrap();
    let State::Closed(closed) = global_state(&h) else {
        panic!("should be closed")
    };
    let counts = closed.counts_at(&cfg, h.clock().now_ms());
    eprintln!(
        "{sent} requests from {WORKERS} workers: window total {} failures {}, cas_retries {}, cas_exhausted {exhausted}",
        counts.total,
        counts.failures,
        counter(&h, "breaker.cas_retries")
    );
    assert_eq!(
        counts.total + exhausted,
        sent,
        "every outcome counted or reported skipped"
    );
    assert!(counts.failures <= sent / 4 && counts.failures + exhausted >= sent / 4);
    assert!(
        exhausted * 100 <= sent,
        "retries should almost never run out"
    );
    assert_eq!(counter(&h, "requests_inspected"), sent);
}

/// Shared data has no delete: an empty value stands for none, and a value
/// another version of the plugin wrote (or garbage) is no state. Through the
/// wasm either reads as a fresh, closed breaker, which the next outcome
/// overwrites; nothing traps.
#[test]
fn an_empty_or_foreign_breaker_value_is_a_fresh_breaker() {
    let config = r#"{"breaker":{"enabled":true,"scope":"global","consecutive_failures":1000,"min_requests":1000}}"#;
    let cfg: BreakerConfig = serde_json::from_str("{}").unwrap();
    for stored in [&b""[..], b"\xFF\x00garbage", b"\x01\x07"] {
        let (h, mut vm) = start(config);
        assert_eq!(vm.send(&good()).unwrap().status(), None);
        let keys = h.shared_data().keys();
        let key = keys.iter().find(|k| k.ends_with(".breaker.0")).unwrap();
        h.shared_data().set(key, stored, 0).unwrap();
        let o = vm.send(&bad()).unwrap();
        assert!(o.trap.is_none(), "{stored:?}");
        assert_eq!(o.status(), Some(400), "{stored:?}");
        let State::Closed(closed) = global_state(&h) else {
            panic!("should be closed")
        };
        let c = closed.counts_at(&cfg, h.clock().now_ms());
        assert_eq!((c.total, c.failures), (1, 1), "{stored:?}");
    }
}

/// Lost races, made deterministic: each is retried and counted, the
/// outcome is recorded once, and after eight retries (the README's number)
/// the update is skipped and reported while the request is served.
#[test]
fn lost_cas_races_are_retried_eight_times_then_reported() {
    let config = r#"{"breaker":{"enabled":true,"scope":"global","consecutive_failures":1000,"min_requests":1000}}"#;
    let (h, mut vm) = start(config);
    let cfg: BreakerConfig = serde_json::from_str("{}").unwrap();
    let counts = |h: &Host| {
        let State::Closed(closed) = global_state(h) else {
            panic!("should be closed")
        };
        let c = closed.counts_at(&cfg, h.clock().now_ms());
        (c.total, c.failures)
    };
    assert_eq!(vm.send(&good()).unwrap().status(), None);
    assert_eq!(counts(&h), (1, 0));
    for (races, retried, exhausted, recorded) in
        [(3, 3, 0, true), (8, 8, 0, true), (9, 8, 1, false)]
    {
        let before = counts(&h);
        let (retries, skipped) = (
            counter(&h, "breaker.cas_retries"),
            counter(&h, "breaker.cas_exhausted"),
        );
        h.shared_data().race_next_sets(races);
        assert_eq!(vm.send(&bad()).unwrap().status(), Some(400));
        assert_eq!(
            counter(&h, "breaker.cas_retries") - retries,
            retried,
            "{races} races"
        );
        assert_eq!(
            counter(&h, "breaker.cas_exhausted") - skipped,
            exhausted,
            "{races} races"
        );
        let want = if recorded {
            (before.0 + 1, before.1 + 1)
        } else {
            before
        };
        assert_eq!(counts(&h), want, "{races} races");
    }
}

#[test]
fn a_trip_under_contention_is_one_transition() {
    let config = r#"{"breaker":{"enabled":true,"scope":"global","consecutive_failures":5,"open_seconds":600,"max_open_seconds":600}}"#;
    let (h, shed) = on_workers(config, |vm| {
        (0..200)
            .filter(|_| vm.send(&bad()).unwrap().status() == Some(503))
            .count() as u64
    });
    let shed: u64 = shed.into_iter().sum();
    assert_eq!(
        counter(&h, "breaker.opened"),
        1,
        "exactly one open transition"
    );
    assert!(shed >= 800 - 5 - 4 * 8, "shed {shed}");
    assert_eq!(counter(&h, "breaker.rejected"), shed);
}
