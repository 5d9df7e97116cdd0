//! Incremental JSON inspector (placeholder until the scanner lands).
