//! The proxy-wasm glue: root context (configuration, metrics) and HTTP
//! context (callbacks → [`Session`]). Only this file and `hostcalls` know
//! about proxy-wasm.

use super::hostcalls::{self, LogLevel};
use super::metrics::{self, Metric, RuleCounter};
use super::plugin::Plugin;
use super::session::{
    Action as SessionAction, Host, Level, Session, RULE_PROPERTY, VIOLATION_PROPERTY,
};
use crate::policy::breaker::{SetError, Store, StoreError};
use crate::policy::config::Config;
use crate::violation::ViolationKind;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

/// The root id Envoy and Istio configure for this filter.
pub const ROOT_ID: &str = "json_sanitizer";

proxy_wasm::main! {{
    // Installs a panic hook that logs the panic before the VM traps (a last
    // resort: the filter is written not to panic).
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// Metric ids, in [`Metric::index`] order; `None` where the host refused.
type MetricIds = Rc<Vec<Option<u32>>>;

#[derive(Default)]
struct Root {
    plugin: Option<Rc<Plugin>>,
    metrics: MetricIds,
    /// Per-policy counter ids, in [`RuleCounter::slot`] order; empty when
    /// the configuration has no rules.
    rule_metrics: MetricIds,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let raw = if plugin_configuration_size == 0 {
            Vec::new()
        } else {
            match hostcalls::buffer(
                hostcalls::BUFFER_PLUGIN_CONFIGURATION,
                0,
                plugin_configuration_size,
            ) {
                Some(raw) => raw,
                None => {
                    hostcalls::log(
                        LogLevel::Error,
                        "json-sanitizer: invalid configuration: field `<configuration>`: the host did not hand over the plugin configuration",
                    );
                    return false;
                }
            }
        };
        let config = match Config::parse(&raw) {
            Ok(config) => config,
            Err(e) => {
                hostcalls::log(LogLevel::Error, &format!("json-sanitizer: {e}"));
                return false;
            }
        };
        let text = |path: &[&str]| {
            hostcalls::property(path).map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        let identity = format!(
            "{}/{}",
            text(&["plugin_root_id"]).unwrap_or_else(|| ROOT_ID.to_string()),
            text(&["plugin_name"]).unwrap_or_default()
        );
        let seed = RandomState::new().build_hasher().finish();
        // Per configuration: the prefix and the rules may have changed.
        // Envoy hands back the same counter for a name defined again.
        let prefix = &config.metrics_prefix;
        let mut ids = vec![None; metrics::COUNT];
        for metric in Metric::all() {
            if let Some(slot) = ids.get_mut(metric.index()) {
                *slot = hostcalls::define_counter(&metric.name(prefix));
            }
        }
        self.metrics = Rc::new(ids);
        let mut rule_ids = Vec::new();
        if !config.rules.is_empty() {
            for policy in config.policies() {
                for counter in RuleCounter::ALL {
                    rule_ids.push(hostcalls::define_counter(
                        &counter.name(prefix, &policy.name),
                    ));
                }
            }
        }
        self.rule_metrics = Rc::new(rule_ids);
        for warning in config.warnings() {
            hostcalls::log(LogLevel::Warn, &format!("json-sanitizer: {warning}"));
        }
        let rules = config.rules.len();
        self.plugin = Some(Rc::new(Plugin::new(config, &identity, &raw, seed)));
        hostcalls::log(
            LogLevel::Info,
            &format!("json-sanitizer: configured ({rules} rules)"),
        );
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Always a context: the SDK traps on `None`. Without a configuration
        // (Envoy does not start one) the filter passes everything.
        Some(Box::new(Filter {
            session: self.plugin.clone().map(Session::new),
            host: WasmHost {
                metrics: self.metrics.clone(),
                rule_metrics: self.rule_metrics.clone(),
                store: SharedData,
            },
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter {
    session: Option<Session>,
    host: WasmHost,
}

/// Translates the session's answer for a callback into the host's: a reply
/// is sent here (Envoy sends it when the callback returns), and one the host
/// refuses goes back to the session, which fails closed.
fn act(session: &mut Session, host: &mut WasmHost, action: SessionAction) -> Action {
    match action {
        SessionAction::Continue => Action::Continue,
        SessionAction::Pause => Action::Pause,
        SessionAction::Reply(reply) => {
            if !hostcalls::send_local_response(
                reply.status,
                &reply.details,
                reply.body.as_bytes(),
                &reply.headers,
            ) {
                session.reply_refused(host);
            }
            Action::Pause
        }
    }
}

impl Context for Filter {
    fn on_done(&mut self) -> bool {
        if let Some(session) = self.session.as_mut() {
            session.on_done(&mut self.host);
        }
        true
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(session) = self.session.as_mut() else {
            return Action::Continue;
        };
        let action = match hostcalls::request_headers() {
            Some(head) => session.on_request_headers(&head, end_of_stream, &mut self.host),
            None => session.on_request_headers_unreadable(end_of_stream, &mut self.host),
        };
        act(session, &mut self.host, action)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(session) = self.session.as_mut() else {
            return Action::Continue;
        };
        let action = session.on_request_body(body_size, end_of_stream, &mut self.host);
        act(session, &mut self.host, action)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let Some(session) = self.session.as_mut() else {
            return Action::Continue;
        };
        let action = session.on_request_trailers(&mut self.host);
        act(session, &mut self.host, action)
    }

    /// Only the status of the answer to a WebSocket handshake or a CONNECT
    /// matters (it opens the tunnel); the response itself always goes on.
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(session) = self.session.as_mut() {
            if session.awaits_response() {
                session.on_response_headers(hostcalls::response_status(), &mut self.host);
            }
        }
        Action::Continue
    }
}

/// [`Host`] over the real hostcalls.
struct WasmHost {
    metrics: MetricIds,
    rule_metrics: MetricIds,
    store: SharedData,
}

impl Host for WasmHost {
    fn body(&mut self, start: usize, len: usize) -> Option<Vec<u8>> {
        hostcalls::buffer(hostcalls::BUFFER_HTTP_REQUEST_BODY, start, len)
    }

    fn now_ms(&mut self) -> Option<u64> {
        hostcalls::now_ms()
    }

    fn source_address(&mut self) -> Option<String> {
        hostcalls::property(&["source", "address"])
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    fn store(&self) -> &dyn Store {
        &self.store
    }

    fn reset_stream(&mut self) -> bool {
        hostcalls::reset_request_stream()
    }

    fn log(&mut self, level: Level, message: &str) {
        let level = match level {
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
        };
        hostcalls::log(level, message);
    }

    fn count(&mut self, metric: Metric, delta: u64) {
        if let Some(Some(id)) = self.metrics.get(metric.index()) {
            hostcalls::increment(*id, delta);
        }
    }

    fn count_rule(&mut self, policy: usize, _rule: &str, counter: RuleCounter) {
        if let Some(Some(id)) = self.rule_metrics.get(counter.slot(policy)) {
            hostcalls::increment(*id, 1);
        }
    }

    fn note_violation(&mut self, kind: ViolationKind, rule: &str) {
        hostcalls::set_property(VIOLATION_PROPERTY, kind.as_str().as_bytes());
        hostcalls::set_property(RULE_PROPERTY, rule.as_bytes());
    }
}

/// The breaker's [`Store`] over proxy-wasm shared data.
struct SharedData;

impl Store for SharedData {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
        hostcalls::get_shared_data(key)
            .map_err(|status| StoreError::new(format!("get_shared_data returned status {status}")))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        match hostcalls::set_shared_data(key, value, cas.unwrap_or(0)) {
            Ok(()) => Ok(()),
            Err(hostcalls::CAS_MISMATCH) => Err(SetError::CasMismatch),
            Err(status) => Err(SetError::Host(StoreError::new(format!(
                "set_shared_data returned status {status}"
            )))),
        }
    }
}
