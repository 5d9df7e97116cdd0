//! What every request of one plugin instance shares: the validated
//! configuration and what was derived from it at `on_configure`.

use crate::policy::breaker;
use crate::policy::config::{Config, Policy};

/// One configured plugin (one root context).
#[derive(Debug)]
pub struct Plugin {
    /// The validated configuration.
    pub config: Config,
    /// Secret seed for duplicate-key fingerprints (random per VM), so that
    /// clients cannot precompute colliding keys.
    pub seed: u64,
    /// Shared-data namespace of each breaker: index 0 for the top-level
    /// section, `i + 1` for a rule `i` with its own `breaker` section.
    namespaces: Vec<String>,
}

impl Plugin {
    /// Derives the per-plugin state. `identity` distinguishes plugins that
    /// share a VM's shared data (root id and plugin name; Istio sets no
    /// `vm_id`), `raw_config` is the configuration as received, so two
    /// configurations never share breaker state.
    pub fn new(config: Config, identity: &str, raw_config: &[u8], seed: u64) -> Self {
        let base = breaker::namespace(identity, raw_config);
        let namespaces = (0..=config.rules.len())
            .map(|i| {
                if i == 0 {
                    base.clone()
                } else {
                    format!("{base}r{i}")
                }
            })
            .collect();
        Self {
            config,
            seed,
            namespaces,
        }
    }

    /// The shared-data namespace of `policy`'s breaker.
    pub fn breaker_namespace(&self, policy: &Policy) -> &str {
        self.namespaces
            .get(policy.breaker_id)
            .or_else(|| self.namespaces.first())
            .map_or("", String::as_str)
    }
}
