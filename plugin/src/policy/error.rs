//! The one error type configuration validation produces.

use std::fmt;

/// A configuration problem, naming the offending field by its JSON path
/// (e.g. `limits.max_depth`, `rules[2].match`) so that the `on_configure`
/// log line tells the operator exactly what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the field, as written in the plugin configuration.
    pub field: String,
    /// Why the value is refused, in plain words.
    pub reason: String,
}

impl ConfigError {
    /// Builds an error for `field` with a human-readable `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field path, for errors raised by a nested section
    /// (`max_depth` inside `limits` becomes `limits.max_depth`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_string()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: field `{}`: {}",
            self.field, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}
