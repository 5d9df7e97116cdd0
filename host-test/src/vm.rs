//! Host environments and worker VMs: start-up like Envoy, and the request
//! driver that applies Envoy's stream rules around each guest callback.

use crate::abi::{Action, LogLevel};
use crate::clock::Clock;
use crate::engine::{engine, EPOCH_TICK};
use crate::imports::linker_for;
use crate::request::{
    CallbackArgs, CallbackRecord, HostRefusals, HostcallCounts, LocalReply, LogLine, Outcome,
    ReplySource, Request,
};
use crate::shared::{Metrics, SharedData};
use anyhow::{anyhow, bail, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{
    InstancePre, Memory, Module, Store, StoreLimits, StoreLimitsBuilder, Trap, TypedFunc,
    WasmParams, WasmResults,
};

/// Settings of a host environment (what Envoy would take from its bootstrap
/// and the plugin's `vm_config`).
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// Root id the plugin is configured under (`plugin_root_id` property).
    pub root_id: String,
    /// Plugin name (`plugin_name` property); Istio uses the WasmPlugin name.
    pub plugin_name: String,
    /// VM id (`plugin_vm_id` property); Istio leaves it empty.
    pub vm_id: String,
    /// Envoy's per-connection buffer limit: a paused body that would grow
    /// past it gets a 413 from the host.
    pub buffer_limit: usize,
    /// What `proxy_get_log_level` answers.
    pub log_level: LogLevel,
    /// Longest a single guest callback may run before it is stopped (trap).
    pub time_budget: Duration,
    /// Largest linear memory a VM may grow to.
    pub max_memory: usize,
    /// Extra properties visible from every context (dotted names).
    pub properties: Vec<(String, Vec<u8>)>,
    /// Envoy's `allow_on_headers_stop_iteration` (Wasm `PluginConfig`,
    /// Envoy 1.35 and later; off by default). Off, a `Pause` from the
    /// request headers callback stops *all* iteration: Envoy buffers the body
    /// without handing it to the plugin until it calls `proxy_continue_stream`,
    /// so a plugin that pauses there and waits for its body callback stalls
    /// the request. On, the headers are held and the body callbacks come, with
    /// the request headers still readable in them.
    pub allow_on_headers_stop_iteration: bool,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            root_id: "json_sanitizer".into(),
            plugin_name: "json_sanitizer".into(),
            vm_id: String::new(),
            buffer_limit: 1 << 20,
            log_level: LogLevel::Trace,
            time_budget: Duration::from_secs(10),
            max_memory: 512 << 20,
            properties: Vec::new(),
            allow_on_headers_stop_iteration: false,
        }
    }
}

/// What all VMs of one host environment share.
pub(crate) struct Env {
    pub clock: Clock,
    pub shared: SharedData,
    pub metrics: Metrics,
    pub options: HostOptions,
    pub plugin_config: Vec<u8>,
    pub vm_config: Vec<u8>,
}

impl Env {
    /// Plugin-level properties, then the extra ones.
    pub fn property(&self, path: &str) -> Option<Vec<u8>> {
        let o = &self.options;
        match path {
            "plugin_name" => Some(o.plugin_name.as_bytes().to_vec()),
            "plugin_root_id" => Some(o.root_id.as_bytes().to_vec()),
            "plugin_vm_id" => Some(o.vm_id.as_bytes().to_vec()),
            _ => o
                .properties
                .iter()
                .find(|(k, _)| k == path)
                .map(|(_, v)| v.clone()),
        }
    }
}

/// Which guest callback is running; decides what the hostcalls allow.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Idle,
    Start,
    /// The root context's `proxy_on_context_create` and `proxy_on_configure`:
    /// the calls during which Envoy holds the plugin, so the only ones in
    /// which the plugin configuration can be read.
    Configure,
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    /// `proxy_on_response_headers`: the response headers can be read.
    ResponseHeaders,
    /// `proxy_on_log`: Envoy's access-log phase, where the request headers
    /// can be read (not changed).
    Log,
    Stream,
}

/// A local reply takes effect as in Envoy: it goes downstream, and an
/// upstream that already got part of the request is reset; once the
/// response has started downstream the reply cannot be sent, so the stream
/// is reset instead.
fn take_effect(out: &mut Outcome, reply: LocalReply) {
    out.upstream_reset |= out.headers_forwarded || out.forwarded_bytes > 0;
    if out.response_started {
        out.stream_reset = true;
        out.undelivered_reply = Some(reply);
    } else if reply.source == ReplySource::Host {
        out.host_reply = Some(reply);
    } else {
        out.local_reply = Some(reply);
    }
}

/// Envoy's own answer when a paused body outgrows its buffer limit.
fn payload_too_large() -> LocalReply {
    LocalReply {
        source: ReplySource::Host,
        status: 413,
        details: "request_payload_too_large".into(),
        headers: vec![("content-type".into(), "text/plain".into())],
        body: b"Payload Too Large".to_vec(),
        grpc_status: -1,
    }
}

/// Per-request host state visible to hostcalls.
#[derive(Default)]
pub(crate) struct ReqState {
    pub headers: Vec<(String, String)>,
    pub trailers: Vec<(String, String)>,
    /// What `proxy_get_buffer_bytes(HttpRequestBody)` serves when it is not
    /// [`ReqState::chunk`]: everything buffered since the body was paused,
    /// or a chunk the plugin changed. Read it through [`ReqState::body`].
    body: Vec<u8>,
    /// The current chunk as it arrived, shared with the [`Request`] rather
    /// than copied (Envoy hands a filter the data it received in place).
    chunk: Option<Arc<[u8]>>,
    pub unreadable: bool,
    /// The request's properties, then `request.*` from its pseudo-headers
    /// (few: looked up in order).
    pub properties: Vec<(String, Vec<u8>)>,
    /// What the plugin set with `proxy_set_property`, under the keys Envoy
    /// files it by in the stream's filter state (`wasm.` and the path).
    pub filter_state: Vec<(String, Vec<u8>)>,
    pub local_reply: Option<LocalReply>,
    pub continue_requested: bool,
    pub close_requested: bool,
    pub body_bytes_read: u64,
    pub refuse: HostRefusals,
    /// The headers callback paused and nothing has continued the request
    /// since: the headers are still Envoy's to show (see [`HostOptions::allow_on_headers_stop_iteration`]).
    pub headers_held: bool,
    /// The response headers, once the upstream has answered.
    pub response_headers: Vec<(String, String)>,
    /// `proxy_on_response_headers` has run for this request.
    pub answered: bool,
}

impl ReqState {
    /// Loads `req`, reusing this state's buffers (from an earlier request)
    /// so that a steady stream of requests costs the host no allocations.
    fn load(&mut self, req: &Request) {
        let pseudo = [
            (":method", req.method.as_str()),
            (":path", req.path.as_str()),
            (":authority", req.authority.as_str()),
            (":scheme", req.scheme.as_str()),
        ];
        refill(
            &mut self.headers,
            pseudo
                .into_iter()
                .chain(req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        );
        refill(
            &mut self.trailers,
            req.trailers
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let standard = [
            ("request.path", req.path.as_bytes()),
            ("request.method", req.method.as_bytes()),
            ("request.host", req.authority.as_bytes()),
            ("request.scheme", req.scheme.as_bytes()),
        ];
        let given = |name: &str| req.properties.iter().any(|(k, _)| k == name);
        refill(
            &mut self.properties,
            req.properties
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .chain(standard.into_iter().filter(|(k, _)| !given(k))),
        );
        self.filter_state.clear();
        self.clear_body();
        self.unreadable = req.unreadable_body;
        self.refuse = req.refuse;
        self.headers_held = false;
        self.response_headers.clear();
        self.answered = false;
        self.local_reply = None;
        self.continue_requested = false;
        self.close_requested = false;
        self.body_bytes_read = 0;
    }

    /// The body as the plugin reads it now.
    pub fn body(&self) -> &[u8] {
        self.chunk.as_deref().unwrap_or(&self.body)
    }

    /// The body, to change or add to: a current chunk becomes the host's
    /// own copy first.
    pub fn body_mut(&mut self) -> &mut Vec<u8> {
        if let Some(chunk) = self.chunk.take() {
            self.body.clear();
            self.body.extend_from_slice(&chunk);
        }
        &mut self.body
    }

    /// A chunk that arrived while nothing was buffered becomes the body.
    fn set_chunk(&mut self, chunk: &Arc<[u8]>) {
        self.body.clear();
        self.chunk = Some(Arc::clone(chunk));
    }

    fn clear_body(&mut self) {
        self.body.clear();
        self.chunk = None;
    }

    /// The property `path` (dotted), if this request has it.
    pub fn property(&self, path: &str) -> Option<&[u8]> {
        self.properties
            .iter()
            .find(|(k, _)| k == path)
            .map(|(_, v)| v.as_slice())
    }
}

/// Makes `dst` a copy of `src`, reusing the strings already in `dst`.
fn refill<'a, K, V>(dst: &mut Vec<(K::Owned, V::Owned)>, src: impl Iterator<Item = (&'a K, &'a V)>)
where
    K: ToOwned + ?Sized + 'a,
    V: ToOwned + ?Sized + 'a,
{
    let mut n = 0;
    for (k, v) in src {
        match dst.get_mut(n) {
            Some((dk, dv)) => {
                k.clone_into(dk);
                v.clone_into(dv);
            }
            None => dst.push((k.to_owned(), v.to_owned())),
        }
        n += 1;
    }
    dst.truncate(n);
}

/// The store data of one VM.
pub(crate) struct HostState {
    pub env: Arc<Env>,
    pub memory: Option<Memory>,
    pub alloc: Option<Arc<TypedFunc<u32, u32>>>,
    pub phase: Phase,
    pub req: Option<ReqState>,
    /// The previous request's state, kept for its buffers.
    spare: Option<ReqState>,
    pub logs: Vec<LogLine>,
    pub calls: HostcallCounts,
    pub tick_period_ms: u32,
    pub next_tick_ms: u64,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub rng: u64,
    limits: StoreLimits,
}

impl HostState {
    fn flush_stdio(&mut self) {
        for (fd, buf) in [
            (1, std::mem::take(&mut self.stdout)),
            (2, std::mem::take(&mut self.stderr)),
        ] {
            if !buf.is_empty() {
                let mut b = buf;
                b.push(b'\n');
                crate::imports::emit_stdio(self, fd, &b);
            }
        }
    }
}

/// Why a VM could not start (instantiation, `_initialize`, `proxy_on_vm_start`
/// or `proxy_on_configure`), with everything the plugin logged meanwhile.
#[derive(Debug, Clone)]
pub struct StartError {
    /// The step that failed, e.g. `proxy_on_configure`.
    pub stage: &'static str,
    /// What went wrong.
    pub reason: String,
    /// The plugin's log lines up to the failure.
    pub logs: Vec<LogLine>,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.stage, self.reason)?;
        let important: Vec<&LogLine> = self
            .logs
            .iter()
            .filter(|l| l.level >= LogLevel::Warn)
            .collect();
        let shown: Vec<&LogLine> = if important.is_empty() {
            self.logs.iter().collect()
        } else {
            important
        };
        if !shown.is_empty() {
            let msgs: Vec<&str> = shown.iter().map(|l| l.message.as_str()).collect();
            write!(f, ": {}", msgs.join("; "))?;
        }
        Ok(())
    }
}

impl std::error::Error for StartError {}

/// Builder of a [`Host`].
pub struct HostBuilder {
    module: Module,
    plugin_config: Vec<u8>,
    vm_config: Vec<u8>,
    clock: Clock,
    shared: SharedData,
    metrics: Metrics,
    options: HostOptions,
}

impl HostBuilder {
    /// Plugin configuration bytes (given to `proxy_on_configure`).
    pub fn config(mut self, config: impl AsRef<[u8]>) -> Self {
        self.plugin_config = config.as_ref().to_vec();
        self
    }
    /// VM configuration bytes (given to `proxy_on_vm_start`).
    pub fn vm_config(mut self, config: impl AsRef<[u8]>) -> Self {
        self.vm_config = config.as_ref().to_vec();
        self
    }
    /// The clock (default: real time).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
    /// Shares an existing shared-data map (two plugins in one proxy with the
    /// same, e.g. empty, `vm_id` see one map).
    pub fn shared_data(mut self, shared: SharedData) -> Self {
        self.shared = shared;
        self
    }
    /// Shares an existing metrics registry.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }
    /// Buffer limit for paused bodies (default 1 MiB).
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.options.buffer_limit = bytes;
        self
    }
    /// Envoy's `allow_on_headers_stop_iteration` (default off); see
    /// [`HostOptions::allow_on_headers_stop_iteration`].
    pub fn allow_on_headers_stop_iteration(mut self, allow: bool) -> Self {
        self.options.allow_on_headers_stop_iteration = allow;
        self
    }
    /// Longest run of one guest callback (default 10 s).
    pub fn time_budget(mut self, budget: Duration) -> Self {
        self.options.time_budget = budget;
        self
    }
    /// Root id (default `json_sanitizer`).
    pub fn root_id(mut self, id: &str) -> Self {
        self.options.root_id = id.into();
        self
    }
    /// Plugin name (default `json_sanitizer`).
    pub fn plugin_name(mut self, name: &str) -> Self {
        self.options.plugin_name = name.into();
        self
    }
    /// VM id (default empty, like Istio).
    pub fn vm_id(mut self, id: &str) -> Self {
        self.options.vm_id = id.into();
        self
    }
    /// Answer of `proxy_get_log_level` (default trace: tests see everything).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.options.log_level = level;
        self
    }
    /// Largest linear memory per VM (default 512 MiB).
    pub fn max_memory(mut self, bytes: usize) -> Self {
        self.options.max_memory = bytes;
        self
    }
    /// Adds a property visible from every context.
    pub fn property(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.options
            .properties
            .push((name.into(), value.as_ref().to_vec()));
        self
    }
    /// Replaces all options at once.
    pub fn options(mut self, options: HostOptions) -> Self {
        self.options = options;
        self
    }

    /// Links the module (every import defined or stubbed) and returns the
    /// environment; no VM is started yet.
    pub fn build(self) -> Result<Host> {
        let linker = linker_for(&self.module).map_err(|e| anyhow!("linking the plugin: {e:#}"))?;
        let pre = linker
            .instantiate_pre(&self.module)
            .map_err(|e| anyhow!("linking the plugin: {e:#}"))?;
        Ok(Host {
            pre,
            env: Arc::new(Env {
                clock: self.clock,
                shared: self.shared,
                metrics: self.metrics,
                options: self.options,
                plugin_config: self.plugin_config,
                vm_config: self.vm_config,
            }),
            next_vm: std::sync::atomic::AtomicU32::new(0),
        })
    }
}

/// One plugin configured in one proxy: the linked module, its configuration,
/// and what its worker VMs share (clock, shared data, metrics).
pub struct Host {
    pre: InstancePre<HostState>,
    env: Arc<Env>,
    next_vm: std::sync::atomic::AtomicU32,
}

impl Host {
    /// Starts building a host for `module` (configuration `{}` unless set).
    pub fn builder(module: Module) -> HostBuilder {
        HostBuilder {
            module,
            plugin_config: b"{}".to_vec(),
            vm_config: Vec::new(),
            clock: Clock::real(),
            shared: SharedData::new(),
            metrics: Metrics::new(),
            options: HostOptions::default(),
        }
    }

    /// The shared clock.
    pub fn clock(&self) -> &Clock {
        &self.env.clock
    }
    /// The shared-data map.
    pub fn shared_data(&self) -> &SharedData {
        &self.env.shared
    }
    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.env.metrics
    }
    /// The options in force.
    pub fn options(&self) -> &HostOptions {
        &self.env.options
    }

    /// Starts one worker VM the way Envoy does: instantiate, `_initialize`,
    /// create the root context, `proxy_on_vm_start`, `proxy_on_configure`.
    /// A refusal or trap is a [`StartError`] (downcastable from the error).
    pub fn start_vm(&self) -> Result<Vm> {
        let index = self
            .next_vm
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let opts = &self.env.options;
        let budget_ticks = (opts.time_budget.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1;
        let state = HostState {
            env: self.env.clone(),
            memory: None,
            alloc: None,
            phase: Phase::Start,
            req: None,
            spare: None,
            logs: Vec::new(),
            calls: HostcallCounts::default(),
            tick_period_ms: 0,
            next_tick_ms: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (u64::from(index) + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            limits: StoreLimitsBuilder::new()
                .memory_size(opts.max_memory)
                .build(),
        };
        let mut store = Store::new(engine(), state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(budget_ticks);
        let fail = |stage: &'static str, reason: String, store: &mut Store<HostState>| {
            store.data_mut().flush_stdio();
            anyhow::Error::new(StartError {
                stage,
                reason,
                logs: std::mem::take(&mut store.data_mut().logs),
            })
        };
        let instance = match self.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(e) => return Err(fail("instantiate", describe(&e), &mut store)),
        };
        if !instance
            .exports(&mut store)
            .any(|e| e.name().starts_with("proxy_abi_version_"))
        {
            return Err(fail(
                "instantiate",
                "module exports no proxy_abi_version_* marker (not a proxy-wasm plugin)".into(),
                &mut store,
            ));
        }
        let Some(memory) = instance.get_memory(&mut store, "memory") else {
            return Err(fail(
                "instantiate",
                "module exports no memory".into(),
                &mut store,
            ));
        };
        let alloc = instance
            .get_typed_func::<u32, u32>(&mut store, "proxy_on_memory_allocate")
            .or_else(|_| instance.get_typed_func::<u32, u32>(&mut store, "malloc"))
            .ok();
        if alloc.is_none() {
            return Err(fail(
                "instantiate",
                "module exports neither proxy_on_memory_allocate nor malloc".into(),
                &mut store,
            ));
        }
        store.data_mut().memory = Some(memory);
        store.data_mut().alloc = alloc.map(Arc::new);

        macro_rules! export {
            ($name:literal, $p:ty, $r:ty) => {
                match instance.get_func(&mut store, $name) {
                    None => None,
                    Some(f) => match f.typed::<$p, $r>(&store) {
                        Ok(t) => Some(Arc::new(t)),
                        Err(e) => {
                            let reason = format!("export {} has the wrong signature: {e}", $name);
                            return Err(fail("instantiate", reason, &mut store));
                        }
                    },
                }
            };
        }
        let initialize = export!("_initialize", (), ());
        let ex = Exports {
            context_create: export!("proxy_on_context_create", (u32, u32), ()),
            vm_start: export!("proxy_on_vm_start", (u32, u32), u32),
            configure: export!("proxy_on_configure", (u32, u32), u32),
            request_headers: export!("proxy_on_request_headers", (u32, u32, u32), u32),
            request_body: export!("proxy_on_request_body", (u32, u32, u32), u32),
            request_trailers: export!("proxy_on_request_trailers", (u32, u32), u32),
            response_headers: export!("proxy_on_response_headers", (u32, u32, u32), u32),
            log: export!("proxy_on_log", u32, ()),
            done: export!("proxy_on_done", u32, u32),
            delete: export!("proxy_on_delete", u32, ()),
            tick: export!("proxy_on_tick", u32, ()),
        };

        let mut vm = Vm {
            store,
            ex,
            root: 1,
            next_ctx: 2,
            broken: None,
            index,
            budget_ticks,
            logs: Vec::new(),
            ticks_fired: 0,
        };
        let stage_err = |vm: &mut Vm, stage: &'static str, reason: String| {
            vm.store.data_mut().flush_stdio();
            anyhow::Error::new(StartError {
                stage,
                reason,
                logs: std::mem::take(&mut vm.store.data_mut().logs),
            })
        };
        if let Some(f) = initialize {
            if let Err(t) = vm.invoke(&f, ()) {
                return Err(stage_err(&mut vm, "_initialize", format!("trapped: {t}")));
            }
        }
        let root = vm.root;
        if let Some(f) = vm.ex.context_create.clone() {
            if let Err(t) = vm.invoke_holding_plugin(&f, (root, 0)) {
                return Err(stage_err(
                    &mut vm,
                    "proxy_on_context_create",
                    format!("trapped: {t}"),
                ));
            }
        }
        let vm_config_len = self.env.vm_config.len() as u32;
        if let Some(f) = vm.ex.vm_start.clone() {
            match vm.invoke(&f, (root, vm_config_len)) {
                Err(t) => {
                    return Err(stage_err(
                        &mut vm,
                        "proxy_on_vm_start",
                        format!("trapped: {t}"),
                    ))
                }
                Ok(0) => {
                    return Err(stage_err(
                        &mut vm,
                        "proxy_on_vm_start",
                        "plugin returned false".into(),
                    ))
                }
                Ok(_) => {}
            }
        }
        let config_len = self.env.plugin_config.len() as u32;
        if let Some(f) = vm.ex.configure.clone() {
            match vm.invoke_holding_plugin(&f, (root, config_len)) {
                Err(t) => {
                    return Err(stage_err(
                        &mut vm,
                        "proxy_on_configure",
                        format!("trapped: {t}"),
                    ))
                }
                Ok(0) => {
                    return Err(stage_err(
                        &mut vm,
                        "proxy_on_configure",
                        "plugin rejected its configuration".into(),
                    ))
                }
                Ok(_) => {}
            }
        }
        let st = vm.store.data_mut();
        st.phase = Phase::Idle;
        st.flush_stdio();
        vm.logs = std::mem::take(&mut st.logs);
        st.calls.clear();
        Ok(vm)
    }

    /// Starts `n` worker VMs (each can be moved to its own thread).
    pub fn start_vms(&self, n: usize) -> Result<Vec<Vm>> {
        (0..n).map(|_| self.start_vm()).collect()
    }
}

/// An exported callback (if the guest has it), behind an `Arc` because a
/// `TypedFunc` clone copies its registered type, which costs more than the
/// call itself on the per-request path.
type Export<P, R> = Option<Arc<TypedFunc<P, R>>>;

/// The guest's exported callbacks.
#[derive(Clone)]
struct Exports {
    context_create: Export<(u32, u32), ()>,
    vm_start: Export<(u32, u32), u32>,
    configure: Export<(u32, u32), u32>,
    request_headers: Export<(u32, u32, u32), u32>,
    request_body: Export<(u32, u32, u32), u32>,
    request_trailers: Export<(u32, u32), u32>,
    response_headers: Export<(u32, u32, u32), u32>,
    log: Export<u32, ()>,
    done: Export<u32, u32>,
    delete: Export<u32, ()>,
    tick: Export<u32, ()>,
}

/// One-line description of a guest failure.
fn describe(e: &wasmtime::Error) -> String {
    if let Some(t) = e.downcast_ref::<Trap>() {
        return match t {
            Trap::Interrupt => "guest exceeded its time budget (epoch deadline reached)".into(),
            // Its text already starts with "wasm trap:".
            other => other.to_string(),
        };
    }
    let root = e.root_cause().to_string();
    let top = e.to_string();
    let msg = if top.starts_with("error while executing") {
        root
    } else {
        top
    };
    msg.lines().next().unwrap_or("unknown error").to_string()
}

/// One worker VM: its own store and instance, usable on its own thread.
///
/// A trap marks it broken, like Envoy tearing the VM down: the request that
/// trapped records it in its [`Outcome`], and later requests are refused
/// with an error instead of running on a VM in an unknown state.
pub struct Vm {
    store: Store<HostState>,
    ex: Exports,
    root: u32,
    next_ctx: u32,
    broken: Option<String>,
    index: u32,
    budget_ticks: u64,
    logs: Vec<LogLine>,
    ticks_fired: u64,
}

/// How a request ends early.
enum Stop {
    Reply,
    Reset,
    Trap,
}

impl Vm {
    fn invoke<P: WasmParams, R: WasmResults>(
        &mut self,
        f: &TypedFunc<P, R>,
        args: P,
    ) -> std::result::Result<R, String> {
        self.store.set_epoch_deadline(self.budget_ticks);
        match f.call(&mut self.store, args) {
            Ok(r) => Ok(r),
            Err(e) => {
                let msg = describe(&e);
                self.broken = Some(msg.clone());
                self.store.data_mut().flush_stdio();
                Err(msg)
            }
        }
    }

    /// [`Vm::invoke`] in [`Phase::Configure`]: a start-up call during which
    /// Envoy holds the plugin, so its configuration can be read.
    fn invoke_holding_plugin<P: WasmParams, R: WasmResults>(
        &mut self,
        f: &TypedFunc<P, R>,
        args: P,
    ) -> std::result::Result<R, String> {
        self.store.data_mut().phase = Phase::Configure;
        let result = self.invoke(f, args);
        self.store.data_mut().phase = Phase::Start;
        result
    }

    /// Index of this VM within its host (0, 1, ...), e.g. for thread names.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Why this VM is broken, if it trapped.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Current linear-memory size in bytes (memory never shrinks, so this is
    /// the high-water mark: streaming must keep it flat).
    pub fn memory_size(&self) -> usize {
        self.store
            .data()
            .memory
            .map(|m| m.data_size(&self.store))
            .unwrap_or(0)
    }

    /// Log lines from start-up and ticks (request logs are in each [`Outcome`]).
    pub fn logs(&self) -> &[LogLine] {
        &self.logs
    }

    /// Takes the start-up and tick log lines.
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.logs)
    }

    /// Tick period the plugin asked for (`None` = no ticks).
    pub fn tick_period(&self) -> Option<Duration> {
        let p = self.store.data().tick_period_ms;
        (p > 0).then(|| Duration::from_millis(u64::from(p)))
    }

    /// Ticks fired so far.
    pub fn ticks_fired(&self) -> u64 {
        self.ticks_fired
    }

    /// Calls `proxy_on_tick` on the root context once, now.
    pub fn tick(&mut self) -> Result<()> {
        self.ensure_usable()?;
        let Some(f) = self.ex.tick.clone() else {
            return Ok(());
        };
        self.store.data_mut().phase = Phase::Idle;
        let r = self.invoke(&f, self.root);
        self.ticks_fired += 1;
        let st = self.store.data_mut();
        st.flush_stdio();
        self.logs.append(&mut st.logs);
        st.calls.clear();
        r.map_err(|t| anyhow!("proxy_on_tick trapped: {t}"))
    }

    /// Fires every tick that is due by the host clock since the plugin set
    /// its period (at most 10,000 at once); returns how many fired.
    pub fn fire_due_ticks(&mut self) -> Result<u64> {
        let mut fired = 0;
        loop {
            let st = self.store.data();
            let period = u64::from(st.tick_period_ms);
            if period == 0 || st.env.clock.now_ms() < st.next_tick_ms || fired >= 10_000 {
                return Ok(fired);
            }
            self.store.data_mut().next_tick_ms += period;
            self.tick()?;
            fired += 1;
        }
    }

    fn ensure_usable(&self) -> Result<()> {
        if let Some(b) = &self.broken {
            bail!(
                "VM {} is broken (it trapped: {b}); start a new VM",
                self.index
            );
        }
        Ok(())
    }

    /// Drives one request through the plugin the way Envoy would, and
    /// returns what happened. `Err` only when the VM is already broken;
    /// a trap during this request is recorded in [`Outcome::trap`].
    pub fn send(&mut self, req: &Request) -> Result<Outcome> {
        self.ensure_usable()?;
        let started = Instant::now();
        let ctx = self.next_ctx;
        self.next_ctx = self.next_ctx.wrapping_add(1).max(2);
        {
            let st = self.store.data_mut();
            st.logs.clear();
            st.calls.clear();
            let mut state = st.spare.take().unwrap_or_default();
            state.load(req);
            st.req = Some(state);
        }
        let mut out = Outcome {
            forwarded_body: req.capture_forwarded.then(Vec::new),
            // context create, headers, body, log, done, delete: one allocation.
            callbacks: Vec::with_capacity(8),
            ..Outcome::default()
        };
        let stopped = self.drive(ctx, req, &mut out);
        if !matches!(stopped, Err(Stop::Trap)) {
            self.finish_stream(ctx, &mut out);
        }
        if let Some(t) = &self.broken {
            out.trap = Some(t.clone());
            if out.reply().is_none() {
                // Envoy fails the stream of a crashed VM with a 503.
                take_effect(
                    &mut out,
                    LocalReply {
                        source: ReplySource::Host,
                        status: 503,
                        details: "wasm_fail_stream".into(),
                        headers: Vec::new(),
                        body: Vec::new(),
                        grpc_status: -1,
                    },
                );
            }
        }
        let st = self.store.data_mut();
        st.flush_stdio();
        st.phase = Phase::Idle;
        if let Some(mut r) = st.req.take() {
            out.body_bytes_read = r.body_bytes_read;
            out.filter_state = std::mem::take(&mut r.filter_state);
            st.spare = Some(r);
        }
        out.logs = std::mem::take(&mut st.logs);
        // A copy the size of this request's list; the list keeps its room.
        out.hostcalls = st.calls.clone();
        st.calls.clear();
        out.completed = stopped.is_ok() && !out.stalled && out.trap.is_none();
        out.elapsed = started.elapsed();
        Ok(out)
    }

    fn drive(
        &mut self,
        ctx: u32,
        req: &Request,
        out: &mut Outcome,
    ) -> std::result::Result<(), Stop> {
        if let Some(f) = self.ex.context_create.clone() {
            self.store.data_mut().phase = Phase::Stream;
            self.invoke(&f, (ctx, self.root)).map_err(|_| Stop::Trap)?;
        }
        let has_body = !req.chunks.is_empty();
        let has_trailers = req.trailers.is_some();
        let headers_eos = !has_body && !has_trailers;
        let n_headers = self
            .store
            .data()
            .req
            .as_ref()
            .map_or(0, |r| r.headers.len()) as u32;

        let action = self.callback(
            ctx,
            out,
            Phase::RequestHeaders,
            "proxy_on_request_headers",
            CallbackArgs::new(&[n_headers as u64, headers_eos as u64]),
        )?;
        if action == Action::Continue {
            self.flush(req, out);
            self.answer(ctx, req, out)?;
        } else if let Some(r) = self.store.data_mut().req.as_mut() {
            r.headers_held = true;
        }
        if headers_eos {
            out.stalled = action == Action::Pause;
            return Ok(());
        }
        if action == Action::Pause
            && !self
                .store
                .data()
                .env
                .options
                .allow_on_headers_stop_iteration
        {
            // StopAllIterationAndWatermark: Envoy buffers the body (pushing
            // back on the client past its buffer limit) and calls no body or
            // trailers callback until the plugin continues the stream, which
            // it can no longer do from a callback of this request.
            out.stalled = true;
            return Ok(());
        }

        let limit = self.store.data().env.options.buffer_limit;
        let mut body_paused = false;
        // An end apart is an empty chunk after the others (trailers end the
        // body themselves).
        let apart = req.end_apart && !has_trailers;
        let end_alone = apart.then(|| Arc::<[u8]>::from(&[][..]));
        let last = req.chunks.len() + usize::from(apart);
        for (i, chunk) in req.chunks.iter().chain(end_alone.as_ref()).enumerate() {
            let eos = i + 1 == last && !has_trailers;
            let size = {
                let r = self.store.data_mut().req.as_mut().expect("request state");
                if body_paused {
                    if r.body().len() + chunk.len() > limit {
                        take_effect(out, payload_too_large());
                        return Err(Stop::Reply);
                    }
                    r.body_mut().extend_from_slice(chunk);
                } else {
                    r.set_chunk(chunk);
                }
                r.body().len()
            };
            let action = self.callback(
                ctx,
                out,
                Phase::RequestBody,
                "proxy_on_request_body",
                CallbackArgs::new(&[size as u64, eos as u64]),
            )?;
            match action {
                Action::Continue => {
                    self.flush(req, out);
                    self.answer(ctx, req, out)?;
                    body_paused = false;
                }
                Action::Pause => {
                    body_paused = true;
                    // Envoy buffers the chunk the plugin paused on, and its
                    // limit applies then, not only when the next one comes.
                    let buffered = self.store.data().req.as_ref().map_or(0, |r| r.body().len());
                    if buffered > limit {
                        take_effect(out, payload_too_large());
                        return Err(Stop::Reply);
                    }
                }
            }
            if eos {
                out.stalled = body_paused;
                return Ok(());
            }
        }

        if has_trailers {
            let n = req.trailers.as_ref().map_or(0, Vec::len) as u64;
            let action = self.callback(
                ctx,
                out,
                Phase::RequestTrailers,
                "proxy_on_request_trailers",
                CallbackArgs::new(&[n]),
            )?;
            if action == Action::Continue {
                self.flush(req, out);
                out.trailers_forwarded = true;
                self.answer(ctx, req, out)?;
            } else {
                out.stalled = true;
            }
        }
        Ok(())
    }

    /// Runs one HTTP callback and applies what it asked for when it returns:
    /// a pending local reply or close ends the request; a `continue_stream`
    /// issued during the callback acts as `Continue`.
    fn callback(
        &mut self,
        ctx: u32,
        out: &mut Outcome,
        phase: Phase,
        name: &'static str,
        args: CallbackArgs,
    ) -> std::result::Result<Action, Stop> {
        self.store.data_mut().phase = phase;
        let arg = |i: usize| args.as_slice().get(i).copied().unwrap_or(0) as u32;
        let raw = match phase {
            Phase::RequestHeaders => match self.ex.request_headers.clone() {
                Some(f) => self.invoke(&f, (ctx, arg(0), arg(1))),
                None => Ok(0),
            },
            Phase::RequestBody => match self.ex.request_body.clone() {
                Some(f) => self.invoke(&f, (ctx, arg(0), arg(1))),
                None => Ok(0),
            },
            Phase::ResponseHeaders => match self.ex.response_headers.clone() {
                Some(f) => self.invoke(&f, (ctx, arg(0), arg(1))),
                None => Ok(0),
            },
            _ => match self.ex.request_trailers.clone() {
                Some(f) => self.invoke(&f, (ctx, arg(0))),
                None => Ok(0),
            },
        };
        self.store.data_mut().phase = Phase::Stream;
        let raw = match raw {
            Ok(r) => r,
            Err(_) => {
                out.callbacks.push(CallbackRecord {
                    name,
                    args,
                    action: None,
                });
                return Err(Stop::Trap);
            }
        };
        let action = Action::from_raw(raw as i32);
        out.callbacks.push(CallbackRecord {
            name,
            args,
            action: Some(action),
        });
        let r = self.store.data_mut().req.as_mut().expect("request state");
        let reply = r.local_reply.take();
        let close = std::mem::take(&mut r.close_requested);
        let resume = std::mem::take(&mut r.continue_requested);
        let forwarded = out.headers_forwarded || out.forwarded_bytes > 0;
        if let Some(reply) = reply {
            take_effect(out, reply);
            return Err(Stop::Reply);
        }
        if close {
            out.stream_reset = true;
            out.upstream_reset = forwarded;
            return Err(Stop::Reset);
        }
        Ok(if resume { Action::Continue } else { action })
    }

    /// Sends held headers and buffered body bytes upstream; an upstream
    /// that answers early starts its response once enough bytes went up.
    fn flush(&mut self, req: &Request, out: &mut Outcome) {
        let r = self.store.data_mut().req.as_mut().expect("request state");
        r.headers_held = false;
        if !out.headers_forwarded {
            out.headers_forwarded = true;
            if out.forwarded_body.is_some() {
                out.forwarded_headers = Some(r.headers.clone());
            }
        }
        out.forwarded_bytes += r.body().len() as u64;
        if req
            .early_response_after
            .is_some_and(|after| out.forwarded_bytes >= after)
        {
            out.response_started = true;
        }
        if let Some(fb) = out.forwarded_body.as_mut() {
            fb.extend_from_slice(r.body());
        }
        r.clear_body();
    }

    /// Once the upstream's response has started (see
    /// [`Request::early_response_after`]), its headers reach the plugin's
    /// `proxy_on_response_headers`, once, with `:status` (the request's
    /// [`Request::response_status`]).
    fn answer(
        &mut self,
        ctx: u32,
        req: &Request,
        out: &mut Outcome,
    ) -> std::result::Result<(), Stop> {
        let r = self.store.data_mut().req.as_mut().expect("request state");
        if !out.response_started || r.answered {
            return Ok(());
        }
        r.answered = true;
        r.response_headers.clear();
        r.response_headers
            .push((":status".into(), req.response_status.to_string()));
        self.callback(
            ctx,
            out,
            Phase::ResponseHeaders,
            "proxy_on_response_headers",
            CallbackArgs::new(&[1, 0]),
        )?;
        Ok(())
    }

    /// End of stream: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
    fn finish_stream(&mut self, ctx: u32, out: &mut Outcome) {
        if let Some(f) = self.ex.log.clone() {
            out.callbacks.push(CallbackRecord {
                name: "proxy_on_log",
                args: CallbackArgs::default(),
                action: None,
            });
            self.store.data_mut().phase = Phase::Log;
            let logged = self.invoke(&f, ctx);
            self.store.data_mut().phase = Phase::Stream;
            if logged.is_err() {
                return;
            }
        }
        self.store.data_mut().phase = Phase::Stream;
        if let Some(f) = self.ex.done.clone() {
            out.callbacks.push(CallbackRecord {
                name: "proxy_on_done",
                args: CallbackArgs::default(),
                action: None,
            });
            if self.invoke(&f, ctx).is_err() {
                return;
            }
        }
        if let Some(f) = self.ex.delete.clone() {
            out.callbacks.push(CallbackRecord {
                name: "proxy_on_delete",
                args: CallbackArgs::default(),
                action: None,
            });
            let _ = self.invoke(&f, ctx);
        }
    }
}
