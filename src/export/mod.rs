//! What leaves the process: the exposition text of `/metrics` and `backfill`, OTLP pushes, the
//! exporter's own metrics, and the usage exports of `query` and `backfill` (text table, CSV,
//! FOCUS, XLSX).

pub mod exposition;
pub mod focus;
pub mod otlp;
pub mod selfmetrics;
pub mod sheet;
pub mod xlsx;
