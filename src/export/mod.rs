//! What leaves the process: the exposition text of `/metrics` and `backfill`, OTLP pushes, and
//! the exporter's own metrics.

pub mod exposition;
pub mod otlp;
pub mod selfmetrics;
